// What the completion scripts know, read from spec.ts each time a script is
// printed, so a new command or option is completed without touching the
// generators. Each generator (bash.ts, zsh.ts, fish.ts) only turns this into
// its shell's syntax.
import { predictModes } from '../../config/mosh-programs.js';
import { moshTransports } from '../../config/types.js';
import { commands, globalOptions, type OptionSpec } from '../spec.js';

export const shells = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof shells)[number];

/**
 * The hidden argument the scripts call back with (`moshctl [-f FILE]...
 * completion __hosts`): host names depend on the config in effect when TAB is
 * pressed, so they cannot be baked into the script. Not a shell name, so it
 * never shows in help or in the shells offered after `completion`.
 */
export const HOSTS_ARG = '__hosts';

/** What an option's value is completed with: files, a fixed list, or nothing (any text). */
export type OptionValue = { kind: 'file' } | { kind: 'list'; values: readonly string[] } | { kind: 'text' };

export interface OptionModel {
  long: string;
  short?: string;
  /** One short line for the shells that show descriptions (zsh, fish). */
  brief: string;
  /** Undefined for a flag. */
  value?: OptionValue;
  /** The option may be given more than once (`-f a -f b`). */
  repeats: boolean;
}

export interface CommandModel {
  name: string;
  summary: string;
  options: OptionModel[];
  /** What the positional arguments are completed with, if anything. */
  positional: 'hosts' | 'shells' | undefined;
  max: number;
  /** Whether `-- COMMAND...` may follow: after `--`, nothing of moshctl's is completed. */
  rest: boolean;
}

export interface CompletionModel {
  commands: CommandModel[];
  global: OptionModel[];
  shells: readonly string[];
  hostsArg: string;
}

/**
 * Options whose values come from a list elsewhere in the code: spec.ts holds
 * only their help text. Keyed by the option's name, as in spec.ts.
 */
const valueLists: Record<string, readonly string[]> = {
  transport: moshTransports,
  // An address is typed; the two words are offered.
  'bind-server': ['ssh', 'any'],
  predict: predictModes,
};

/** Options whose value is a file on this machine (completed as files); --server's is on the target. */
const localFiles: readonly string[] = ['client'];

/** Help text is written for --help; a completion menu line wants its first clause, without asides. */
export function brief(help: string): string {
  const clause = help.replace(/\s*\([^()]*\)/g, '').split(/; /)[0] ?? '';
  // ASCII dots: the scripts must read the same whatever the terminal's locale.
  return clause.length > 60 ? `${clause.slice(0, 57).trimEnd()}...` : clause;
}

function optionModel(long: string, o: OptionSpec): OptionModel {
  const list = valueLists[long];
  const value: OptionValue | undefined =
    o.type === 'boolean'
      ? undefined
      : list
        ? { kind: 'list', values: list }
        : o.arg === 'FILE' || localFiles.includes(long)
          ? { kind: 'file' }
          : { kind: 'text' };
  return {
    long,
    ...(o.short ? { short: o.short } : {}),
    brief: brief(o.help),
    ...(value ? { value } : {}),
    repeats: o.multiple === true,
  };
}

/** A command whose first argument is NAME (`up NAME`, `down [NAME]`) takes a host name there. */
function positionalOf(name: string, usage: string): CommandModel['positional'] {
  if (name === 'completion') return 'shells';
  return /^moshctl \S+ \[?NAME\b/.test(usage) ? 'hosts' : undefined;
}

export function completionModel(): CompletionModel {
  return {
    commands: commands.map((c) => ({
      name: c.name,
      summary: c.summary,
      options: Object.entries(c.options).map(([long, o]) => optionModel(long, o)),
      positional: positionalOf(c.name, c.usage),
      max: c.max,
      rest: c.rest === true,
    })),
    global: Object.entries(globalOptions).map(([long, o]) => optionModel(long, o)),
    shells,
    hostsArg: HOSTS_ARG,
  };
}

/** Every spelling of an option that takes a value: `--file`, `-f`. */
export function spellings(o: OptionModel): string[] {
  return [`--${o.long}`, ...(o.short ? [`-${o.short}`] : [])];
}

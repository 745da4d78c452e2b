// Command-line parsing on node:util's parseArgs (strict), so unknown options
// fail with exit 2 instead of being ignored.
import { parseArgs } from 'node:util';
import { UserError } from '../errors.js';
import { suggest } from '../config/suggest.js';
import { commands, globalOptions, type CommandSpec } from './spec.js';

export interface Parsed {
  command: CommandSpec | undefined;
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** Everything after `--`. */
  rest: string[];
}

/** Finds the command word: the first argument that is neither an option nor an option's value. */
function splitCommand(argv: readonly string[]): { name: string | undefined; others: string[] } {
  const takesValue = new Set(
    Object.entries(globalOptions)
      .filter(([, o]) => o.type === 'string')
      .flatMap(([n, o]) => [`--${n}`, ...(o.short ? [`-${o.short}`] : [])]),
  );
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--') break;
    if (takesValue.has(a)) {
      i++;
      continue;
    }
    if (!a.startsWith('-') || a === '-')
      return { name: a, others: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { name: undefined, others: [...argv] };
}

export function parseCommandLine(argv: readonly string[]): Parsed {
  const { name, others } = splitCommand(argv);
  const command = name === undefined ? undefined : commands.find((c) => c.name === name);
  if (name !== undefined && !command) {
    const guess = suggest(
      name,
      commands.map((c) => c.name),
    );
    throw UserError.one(
      `unknown command "${name}"`,
      `${guess ? `did you mean "${guess}"? ` : ''}run "moshctl --help" for the list of commands`,
    );
  }
  const options = { ...globalOptions, ...(command?.options ?? {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: others, options, strict: true, allowPositionals: true, tokens: true });
  } catch (cause) {
    const message = (cause as Error).message.split('\n')[0] ?? 'bad arguments';
    throw UserError.one(message, `run "moshctl ${command?.name ?? ''} --help"`.replace('  ', ' '), undefined);
  }
  const terminator = parsed.tokens.find((t) => t.kind === 'option-terminator');
  const restStart = terminator ? terminator.index + 1 : others.length;
  const rest = others.slice(restStart);
  const positionals = parsed.tokens
    .filter((t) => t.kind === 'positional' && t.index < restStart)
    .map((t) => (t.kind === 'positional' ? t.value : ''));
  const values = parsed.values as Parsed['values'];
  if (command && !values.help && !values.version) {
    const where = `run "moshctl ${command.name} --help"`;
    if (positionals.length < command.min) throw UserError.one(`missing argument: ${command.usage}`, where);
    if (positionals.length > command.max) {
      throw UserError.one(`unexpected argument "${positionals[command.max]}": ${command.usage}`, where);
    }
    if (rest.length > 0 && !command.rest)
      throw UserError.one(`"${command.name}" takes no "-- COMMAND"`, where);
  }
  return { command, values, positionals, rest };
}

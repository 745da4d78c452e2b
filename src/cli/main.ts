// The one place that turns errors into messages and exit codes. Commands are
// imported on demand so `validate` never loads ssh2 or listr2.
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { EnvError, ExitCode, formatProblem, Interrupted, UserError } from '../errors.js';
import { debugEnabled, maskSecrets } from '../transport/debug-chain.js';
import { parseCommandLine } from './args.js';
import { commandHelp, mainHelp } from './help.js';
import { processIo, type Io } from './io.js';

export interface CommandContext {
  io: Io;
  files: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  rest: string[];
  /** --debug or MOSHCTL_DEBUG=1: stacks with errors, each remote command, step timings. */
  debug: boolean;
}

type Run = (ctx: CommandContext) => Promise<number>;

const loaders: Record<string, () => Promise<Run>> = {
  validate: async () => (await import('./commands/validate.js')).run,
  config: async () => (await import('./commands/config.js')).run,
  plan: async () => (await import('./commands/plan.js')).run,
  up: async () => (await import('./commands/session.js')).up,
  down: async () => (await import('./commands/session.js')).down,
  status: async () => (await import('./commands/session.js')).status,
};

interface PackageJson {
  version: string;
  bugs?: string | { url?: string };
}

const packageJson = (): PackageJson => createRequire(import.meta.url)('../../package.json') as PackageJson;

export function version(): string {
  return packageJson().version;
}

/** Where bugs are reported, from package.json. */
export function bugsUrl(): string {
  const { bugs } = packageJson();
  return (typeof bugs === 'string' ? bugs : bugs?.url) ?? 'https://github.com/moshctl/moshctl/issues';
}

/** `--debug` anywhere before `--`, for errors thrown before the command line is parsed. */
function debugRequested(argv: readonly string[], env: Io['env']): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--debug') || debugEnabled(env);
}

/** Runs one command line. Without `io` it is the real process: crashes outside any command are reported too. */
export async function main(argv: string[], io?: Io): Promise<number> {
  const isProcess = io === undefined;
  io ??= processIo();
  let debug = debugRequested(argv, io.env);
  if (isProcess) reportCrashes(io, () => debug);
  try {
    const { command, values, positionals, rest } = parseCommandLine(argv);
    debug = values.debug === true || debugEnabled(io.env);
    if (values.version) {
      io.stdout(`moshctl ${version()}\n`);
      return ExitCode.ok;
    }
    if (values.help || !command) {
      io.stdout(command ? commandHelp(command) : mainHelp());
      if (!command && !values.help) {
        io.stderr('moshctl: no command given\n');
        return ExitCode.usage;
      }
      return ExitCode.ok;
    }
    const load = loaders[command.name];
    if (!load) throw new Error(`bug: no loader for ${command.name}`);
    const run = await load();
    const files = (values.file as string[] | undefined) ?? [];
    // --debug reaches code that sees only the environment (each remote command is logged where a runner is made).
    const env = debug && !debugEnabled(io.env) ? { ...io.env, MOSHCTL_DEBUG: '1' } : io.env;
    return await run({ io: { ...io, env }, files, values, positionals, rest, debug });
  } catch (error) {
    return report(error, io, debug);
  }
}

/** A long list of problems is cut here: the first ones say what is wrong, and fixing them often fixes the rest. */
const MAX_SHOWN_PROBLEMS = 50;

/**
 * Says what went wrong and returns the exit code. Our own errors say what to
 * fix; anything else is a bug: a short message, and its stack only with --debug.
 */
export function report(error: unknown, io: Io, debug = false): number {
  const code = describe(error, io, debug);
  if (debug) io.stderr(`moshctl: debug: ${maskSecrets(stackOf(error))}\n`);
  return code;
}

function describe(error: unknown, io: Io, debug: boolean): number {
  if (error instanceof UserError) {
    const n = error.problems.length;
    const shown =
      n > MAX_SHOWN_PROBLEMS
        ? `${error.problems.slice(0, MAX_SHOWN_PROBLEMS).map(formatProblem).join('\n')}\n... and ${n - MAX_SHOWN_PROBLEMS} more`
        : error.message;
    io.stderr(`moshctl: ${n > 1 ? `${n} problems:\n` : ''}${shown}\n`);
    return error.exitCode;
  }
  if (error instanceof EnvError) {
    const where = [error.where.step, error.where.host && `on ${error.where.host}`].filter(Boolean).join(' ');
    io.stderr(`moshctl: ${where ? `${where}: ` : ''}${error.message}\n  hint: ${error.hint}\n`);
    return error.exitCode;
  }
  if (error instanceof Interrupted) {
    io.stderr(`moshctl: ${error.message}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : inspect(error);
  io.stderr(
    [
      `moshctl: unexpected error: ${maskSecrets(message)}`,
      `  this is a bug in moshctl; please report it at ${bugsUrl()} with the command you ran`,
      ...(debug
        ? []
        : ['  run the command again with --debug to see where it happened, and add that to the report']),
      '',
    ].join('\n'),
  );
  return ExitCode.internal;
}

/**
 * The stack of an error and of each error that caused it. The first error's
 * message was just printed, so its stack starts at its name.
 */
function stackOf(error: unknown): string {
  const parts: string[] = [];
  const seen = new Set<Error>();
  let e: unknown = error;
  for (; e instanceof Error && !seen.has(e) && seen.size < 5; e = e.cause) {
    seen.add(e);
    const stack = e.stack ?? `${e.name}: ${e.message}`;
    const head = `${e.name}: ${e.message}\n`;
    parts.push(
      parts.length === 0 && stack.startsWith(head) ? `${e.name}\n${stack.slice(head.length)}` : stack,
    );
  }
  if (e !== undefined && !(e instanceof Error)) parts.push(`thrown: ${inspect(e)}`);
  return parts.join('\ncaused by: ');
}

let crashesReported = false;

/**
 * An error thrown outside any command's promise (an event handler, a timer)
 * would make Node print its stack and exit 1: report it as the bug it is.
 */
function reportCrashes(io: Io, debug: () => boolean): void {
  if (crashesReported) return;
  crashesReported = true;
  const crash = (error: unknown): void => {
    process.exitCode = report(error, io, debug());
    process.exit();
  };
  process.on('uncaughtException', crash);
  process.on('unhandledRejection', crash);
}

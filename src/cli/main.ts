// Runs one command line: parses it, loads the command, reports what went wrong
// (report.ts). Commands are imported on demand so `validate` never loads ssh2 or listr2.
import { ExitCode } from '../errors.js';
import { debugEnabled } from '../transport/debug-env.js';
import { parseCommandLine } from './args.js';
import type { CommandContext } from './context.js';
import { commandHelp, mainHelp } from './help.js';
import { processIo, withEnv, type Io } from './io.js';
import { report, version } from './report.js';

type Run = (ctx: CommandContext) => Promise<number>;

const loaders: Record<string, () => Promise<Run>> = {
  validate: async () => (await import('./commands/validate.js')).run,
  config: async () => (await import('./commands/config.js')).run,
  plan: async () => (await import('./commands/plan.js')).run,
  up: async () => (await import('./commands/session.js')).up,
  down: async () => (await import('./commands/session.js')).down,
  status: async () => (await import('./commands/session.js')).status,
  completion: async () => (await import('./commands/completion.js')).run,
  doctor: async () => (await import('./commands/doctor.js')).run,
};

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
    return await run({ io: withEnv(io, env), files, values, positionals, rest, debug });
  } catch (error) {
    return report(error, io, debug);
  }
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

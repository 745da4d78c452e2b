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

/** Commands that resolve the host named by their first argument through hosts.ts's resolveRoute. */
const RESOLVES_NAME = new Set(['plan', 'up', 'doctor']);

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
    const files = (values.file as string[] | undefined) ?? [];
    // ssh reads ssh_config on the other core while the command's code loads (ssh-g.ts says when it is used).
    if (RESOLVES_NAME.has(command.name)) await startSshG(io, files, positionals[0]);
    const run = await load();
    // --debug reaches code that sees only the environment (each remote command is logged where a runner is made).
    const env = debug && !debugEnabled(io.env) ? { ...io.env, MOSHCTL_DEBUG: '1' } : io.env;
    return await run({ io: withEnv(io, env), files, values, positionals, rest, debug });
  } catch (error) {
    return report(error, io, debug);
  }
}

/** `ssh -G NAME` started now, unless a config file (found as the command will find it) seems to declare NAME. */
async function startSshG(io: Io, given: string[], name: string | undefined): Promise<void> {
  const [{ discoverFiles }, { startSshG: start }] = await Promise.all([
    import('../config/discover.js'),
    import('../config/ssh-g.js'),
  ]);
  let files: string[];
  try {
    files = discoverFiles({ files: given, env: io.env, cwd: io.cwd });
  } catch {
    return; // a -f FILE that is missing: the command says so
  }
  start(io.env, name, files);
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

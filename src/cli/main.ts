// The one place that turns errors into messages and exit codes. Commands are
// imported on demand so `validate` never loads ssh2 or listr2.
import { createRequire } from 'node:module';
import { EnvError, ExitCode, Interrupted, UserError } from '../errors.js';
import { parseCommandLine } from './args.js';
import { commandHelp, mainHelp } from './help.js';
import { processIo, type Io } from './io.js';

export interface CommandContext {
  io: Io;
  files: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  rest: string[];
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

export function version(): string {
  return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
}

export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  try {
    const { command, values, positionals, rest } = parseCommandLine(argv);
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
    return await run({ io, files, values, positionals, rest });
  } catch (error) {
    return report(error, io);
  }
}

export function report(error: unknown, io: Io): number {
  if (error instanceof UserError) {
    const n = error.problems.length;
    io.stderr(`moshctl: ${n > 1 ? `${n} problems:\n` : ''}${error.message}\n`);
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
  const e = error instanceof Error ? error : new Error(String(error));
  io.stderr(
    `moshctl: internal error: ${e.message}\n${e.stack ?? ''}\n  this is a bug in moshctl; please report it with the command you ran\n`,
  );
  return ExitCode.internal;
}

// The one place that turns errors into messages and exit codes, and what
// package.json says about this moshctl (its version, where bugs go).
import { createRequire } from 'node:module';
import { inspect } from 'node:util';
import { EnvError, ExitCode, formatProblem, Interrupted, UserError } from '../errors.js';
import { maskSecrets } from '../transport/debug-env.js';
import type { Io } from './io.js';

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

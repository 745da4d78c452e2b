// Three error classes, one per audience: the user can fix a UserError by
// editing config or flags; an EnvError is the world (a host, a key, a port)
// refusing; anything else is a bug in moshctl. Only the CLI entry turns them
// into exit codes, so library code never calls process.exit.

/** Exit codes are part of the CLI contract (documented in the README). */
export const ExitCode = {
  ok: 0,
  /** A host, key, port or program was not as needed; nothing is left running. */
  environment: 1,
  /** The config file or the command line is wrong. */
  usage: 2,
  /** A bug in moshctl. */
  internal: 70,
  /** Interrupted by Ctrl-C (128 + SIGINT), after cleaning up. */
  interrupted: 130,
} as const;

export interface Problem {
  /** What is wrong, in one line. */
  message: string;
  /** How to fix it. */
  hint?: string;
  /** Where: a file with line and column, or a host/hop name. */
  file?: string;
  line?: number;
  column?: number;
}

export function formatProblem(p: Problem): string {
  const where = p.file ? `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}: ` : '';
  return `${where}${p.message}${p.hint ? `\n  hint: ${p.hint}` : ''}`;
}

/** The config file or command line is wrong: exit 2, every problem listed. */
export class UserError extends Error {
  override readonly name = 'UserError';
  readonly exitCode = ExitCode.usage;
  constructor(
    readonly problems: Problem[],
    options?: ErrorOptions,
  ) {
    super(problems.map(formatProblem).join('\n'), options);
  }
  static one(message: string, hint?: string, where?: Omit<Problem, 'message' | 'hint'>): UserError {
    return new UserError([{ message, ...(hint ? { hint } : {}), ...where }]);
  }
}

/**
 * Which part of logging in to a hop failed, set where the ssh layers classify
 * a connect failure, so `doctor` maps it to a check without reading messages:
 * reaching it, its host key, authentication, the previous hop refusing to
 * forward to it (that fault is the previous hop's; `host` is still this one),
 * or its connection dropping after it was made (it may well answer again, so
 * teardown does not count it as unreachable).
 */
export type ConnectFault = 'reach' | 'host-key' | 'auth' | 'forward' | 'dropped';

/**
 * The environment refused: a hop unreachable, auth refused, host key unknown,
 * mosh-server missing, ports exhausted. `step` and `host` say where.
 */
export class EnvError extends Error {
  override readonly name = 'EnvError';
  readonly exitCode = ExitCode.environment;
  constructor(
    message: string,
    readonly hint: string,
    readonly where: { host?: string; step?: string; fault?: ConnectFault } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Raised when the user interrupts (SIGINT/SIGTERM/SIGHUP) so callers unwind and clean up. */
export class Interrupted extends Error {
  override readonly name = 'Interrupted';
  readonly exitCode = ExitCode.interrupted;
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

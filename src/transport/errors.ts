// The errors of running a command over either ssh client, in one wording:
// a person sees the same message whichever client carried the command.
import { EnvError } from '../errors.js';

/** A duration for messages: `20 s`, or `300 ms` when under a second. */
export function duration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** Commands appear in messages, so callers pass secrets on stdin only; this bounds their length. */
export function shortCommand(command: string): string {
  return command.length > 80 ? `${command.slice(0, 77)}...` : command;
}

const where = (host: string): { host: string; step: string } => ({ host, step: 'exec' });

export function execTimeout(
  host: string,
  command: string,
  o: { waitingForReady: boolean; timeoutMs: number; stderr: string },
): EnvError {
  const err = o.stderr.trim();
  return new EnvError(
    `\`${shortCommand(command)}\` on ${host} did not ${o.waitingForReady ? 'report ready' : 'finish'} within ${duration(o.timeoutMs)}${err ? `; its stderr: ${err.slice(-300)}` : ''}`,
    `check that the command works when run by hand on ${host}`,
    where(host),
  );
}

export function closedWhileRunning(host: string, command: string, cause?: unknown): EnvError {
  return new EnvError(
    `the connection to ${host} closed while \`${shortCommand(command)}\` ran`,
    `check the network path to ${host}`,
    where(host),
    ...(cause ? [{ cause }] : []),
  );
}

/**
 * A hop's connection dropped while `what` went on (`up` setting up the
 * session, a later hop logging in): the error names that hop, not the step or
 * host that happened to notice.
 */
export function connectionDropped(host: string, what: string, cause?: unknown): EnvError {
  return new EnvError(
    `the connection to ${host} dropped while ${what}`,
    `check that ${host} is up and that the hop before it (or this machine) reaches it, then try again`,
    { host, step: 'connect', fault: 'dropped' },
    ...(cause ? [{ cause }] : []),
  );
}

export function connectionClosed(host: string, cause?: unknown): EnvError {
  return new EnvError(
    `cannot run a command on ${host}: the connection is closed`,
    `reconnect; check the network path to ${host}`,
    where(host),
    ...(cause ? [{ cause }] : []),
  );
}

/** What every ConnectChain requires of its route: hosts, each once. A bug otherwise, never a user's mistake. */
export function checkRoute(hops: readonly { name: string }[], who: string): void {
  if (hops.length === 0) throw new Error(`${who} needs at least one host`);
  const names = hops.map((h) => h.name);
  if (new Set(names).size !== names.length)
    throw new Error(`duplicate host in SSH chain: ${names.join(' → ')}`);
}

// What the executor runs on a hop over ssh to start, check and stop a UDP relay.
// Pure: no I/O. Every value that reaches a command line is validated here and
// shell-quoted, because ssh hands the line to the hop user's login shell.

import { checkInt, invalid } from './checks.js';
import { FALLBACK_RELAY_SH, PROBE_SH, RELAY_ALIVE_SH, STOP_RELAY_SH } from './scripts.js';
import { checkPid, checkStarted, type Liveness } from '../remote/processes.js';
import { SH, shellJoin } from '../remote/shell.js';

/** The runtimes started the old way (one exec, no control channel); python3 and perl are launch.ts's. */
export type RelayRuntimeName = 'socat' | 'nc';

export interface RelaySpec {
  runtime: RelayRuntimeName;
  listen: { from: number; to: number };
  to: { address: string; port: number };
  /** Seconds without an upstream reply after which the relay exits (mosh network_timeout). */
  idleTimeout: number;
  /** Cap on tracked client source addresses (python3, socat); default 64. */
  maxClients?: number;
}

export interface RemoteCommand {
  command: string;
  /** Fed to the command's stdin, then stdin is closed. */
  stdin?: string;
  /** Shown to the user: what this runtime does worse than python3. */
  warning?: string;
}

export const SOCAT_WARNING =
  'socat relay (a fallback for python3 >= 3.6): roaming works, but spoofed packets from new ' +
  'source ports each take one of max-clients socat children until they go quiet for the idle ' +
  'timeout, which can block a roaming client, and keep the relay from exiting when idle';
export const NC_WARNING =
  'nc relay (the article recipe): it locks onto the first client address, so a roam or a 10+ s ' +
  'outage ends the session; it has no idle timeout (stop it with `moshctl down`) and its pipe ' +
  'can merge datagrams under load';

/** An IPv4 address or a DNS name: never a leading `-` (an option to nc/socat) nor shell syntax. */
export function checkRelayTarget(address: string): string {
  const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const ok =
    ipv4.test(address) ||
    (address.length <= 253 && !/^[\d.]+$/.test(address) && address.split('.').every((l) => label.test(l)));
  if (!ok) invalid('next-hop address', address, 'use an IPv4 address or a host name');
  return address;
}

export function relayCommand(spec: RelaySpec): RemoteCommand {
  const from = checkInt('listen port', spec.listen.from, 1, 65535);
  const to = checkInt('listen port', spec.listen.to, from, 65535);
  const host = checkRelayTarget(spec.to.address);
  const port = checkInt('next-hop port', spec.to.port, 1, 65535);
  const idle = checkInt('idle timeout', spec.idleTimeout, 1, 604800);
  const max = checkInt('max clients', spec.maxClients ?? 64, 1, 4096);
  switch (spec.runtime) {
    case 'socat':
    case 'nc': {
      // The script travels in an environment variable so it can start itself again
      // detached (setsid) in another mode; sh reads it with eval, not from a file.
      const args = ['start', spec.runtime, from, to, host, port, idle, max];
      return {
        command: `exec env ${shellJoin([`MOSHCTL_RELAY=${FALLBACK_RELAY_SH}`])} ${SH} -c ${shellJoin([
          'eval "$MOSHCTL_RELAY"',
          'moshctl-relay',
          ...args,
        ])}`,
        warning: spec.runtime === 'socat' ? SOCAT_WARNING : NC_WARNING,
      };
    }
    default:
      return invalid('runtime', spec.runtime satisfies never, 'use socat or nc');
  }
}

/** The ready line, an error line, or undefined while neither has arrived. */
export function parseRelayOutput(
  text: string,
): { port: number; pid: number } | { error: string } | undefined {
  for (const line of text.split(/\r?\n/)) {
    const ok = /^MOSHCTL-RELAY LISTEN (\d{1,5}) PID (\d{1,10})\s*$/.exec(line);
    if (ok) {
      const port = Number(ok[1]);
      const pid = Number(ok[2]);
      if (port >= 1 && port <= 65535 && pid >= 2) return { port, pid };
      return { error: `relay printed an impossible port or pid: ${line.trim()}` };
    }
    const err = /^MOSHCTL-RELAY ERROR (.*?)\s*$/.exec(line);
    if (err) return { error: err[1] ?? 'unknown error' };
  }
  return undefined;
}

/** `started`: the relay's recorded start (see STARTED in remote/processes.ts); without one, its command line alone decides. */
export function stopRelayCommand(pid: number, started?: string): string {
  return `${SH} -c ${shellJoin([STOP_RELAY_SH, 'moshctl-relay-stop', checkPid(pid), checkStarted(started) ?? ''])}`;
}

/**
 * What stopRelayCommand printed: stopped, other when the pid is no longer a
 * relay of ours, unknown when the host could not tell (nothing was signalled).
 */
export function parseRelayStop(text: string): 'stopped' | 'other' | 'unknown' | undefined {
  const m = /^MOSHCTL-RELAY (STOPPED|NOT-OURS|UNKNOWN) \d+\s*$/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'STOPPED' ? 'stopped' : m[1] === 'NOT-OURS' ? 'other' : 'unknown';
}

/** Prints `MOSHCTL-RELAY ALIVE|GONE|UNKNOWN <pid>`; see parseRelayAlive. */
export function relayAliveCommand(pid: number, started?: string): string {
  return `${SH} -c ${shellJoin([RELAY_ALIVE_SH, 'moshctl-relay-alive', checkPid(pid), checkStarted(started) ?? ''])}`;
}

export function parseRelayAlive(text: string): Liveness | undefined {
  const m = /^MOSHCTL-RELAY (ALIVE|GONE|UNKNOWN) \d+\s*$/m.exec(text);
  if (!m) return undefined;
  return m[1] === 'ALIVE' ? 'alive' : m[1] === 'GONE' ? 'dead' : 'unknown';
}

export interface AvailableRuntimes {
  python3: boolean;
  /** major.minor when python3 exists, even if too old. */
  python3Version?: string;
  socat: boolean;
  nc: boolean;
}

export function probeRuntimesCommand(): string {
  return `${SH} -c ${shellJoin([PROBE_SH])}`;
}

export function parseProbe(text: string): AvailableRuntimes {
  const seen = new Map<string, { state: string; version?: string }>();
  for (const m of text.matchAll(/^MOSHCTL-PROBE (python3|socat|nc) (ok|old|missing)(?: (\d+\.\d+))?\s*$/gm)) {
    seen.set(m[1] ?? '', { state: m[2] ?? '', ...(m[3] ? { version: m[3] } : {}) });
  }
  const py = seen.get('python3');
  return {
    python3: py?.state === 'ok',
    ...(py?.version ? { python3Version: py.version } : {}),
    socat: seen.get('socat')?.state === 'ok',
    nc: seen.get('nc')?.state === 'ok',
  };
}

export type RuntimeChoice = { runtime: RelayRuntimeName; warning?: string } | { error: string; hint: string };

/** The weaker relays, when python3 and perl do not run (socat) or on explicit request (socat, nc). */
export function chooseRuntime(requested: RelayRuntimeName, available: AvailableRuntimes): RuntimeChoice {
  switch (requested) {
    case 'socat':
      return available.socat
        ? { runtime: 'socat', warning: SOCAT_WARNING }
        : { error: 'relay runtime socat is not installed', hint: 'apt install socat, or use runtime auto' };
    case 'nc':
      return available.nc
        ? { runtime: 'nc', warning: NC_WARNING }
        : {
            error: 'relay runtime nc is not installed',
            hint: 'apt install netcat-openbsd, or use runtime auto',
          };
  }
}

// Access brokers in the lab (AWS SSM, GCP IAP, `cloudflared access ssh`,
// Teleport `tsh proxy ssh`): ssh gets a byte stream to a host's sshd from a
// ProxyCommand, with no network path and often no resolvable name.
//
// A brokered host's sshd also listens on its own loopback, 127.0.0.1:22, and a
// socat started in that host's namespace listens on a unix socket in the lab
// dir and connects each caller to it. A unix socket named by a path belongs to
// the file system, not to a network namespace, so a ProxyCommand run by ssh in
// the client namespace reaches the host through it with no route at all.

import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, refOf } from './proc.js';
import type { HostName } from './topology.js';

/** Linux takes 108 bytes in sun_path; other systems fewer. A longer path would be cut or refused. */
export const MAX_SOCKET_PATH = 104;

/** Where the login URL of the SSO-style broker points (a .test name, resolvable nowhere). */
export const BROKER_SSO_URL = 'https://sso.example.test/device?code=WXYZ-1234';

/** What the hanging broker runs: exec'd in place of ssh's shell, so ssh's SIGHUP at exit reaches it. */
const HANGING_BROKER = ['sleep', '600'];

/**
 * Brokers that fail as real ones do: `denied` exits 1 at once with "broker:
 * access denied for <HostName>" on stderr; `hang` is `sleep 600`, which never
 * answers (Lab.hangingBrokerPids finds it); `sso` prints "Open BROKER_SSO_URL
 * to log in" on stderr, waits a second and then connects as the real bridge does.
 */
export type BrokerFault = 'denied' | 'hang' | 'sso';

/** `host`, or the first brokered host, when it is brokered; else throws. */
export function pickBrokered(brokered: readonly HostName[], host: HostName | undefined): HostName {
  const h = host ?? brokered[0];
  if (h === undefined || !brokered.includes(h))
    throw new Error(`"${h ?? ''}" is not brokered in this lab (LabOptions.broker: [${brokered.join(', ')}])`);
  return h;
}

export function brokerDir(labDir: string): string {
  return join(labDir, 'broker');
}

export function brokerSocketPath(labDir: string, host: HostName): string {
  return join(brokerDir(labDir), `${host}.sock`);
}

export function brokerLogPath(labDir: string, host: HostName): string {
  return join(brokerDir(labDir), `${host}.log`);
}

/** Throws for a socket path that is too long, or that a ProxyCommand would have to quote. */
export function checkSocketPath(path: string): void {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw new Error(
      `broker: socket path ${path} is longer than ${MAX_SOCKET_PATH} bytes (set TMPDIR shorter)`,
    );
  // socat reads ',' and ':' in an address as its own syntax; ssh_config and sh need no quoting.
  if (!/^[A-Za-z0-9/._-]+$/.test(path)) throw new Error(`broker: socket path ${path} has unusual characters`);
}

/**
 * The bridge, run in the brokered host's namespace: a child per connection,
 * each joined to sshd on the loopback. `mode` lets the client user connect
 * too. A child ends soon after either side closes (socat's 0.5 s -t), but
 * children outlive the listener when it is killed: the lab stops them by pid.
 */
export function bridgeArgv(socket: string): string[] {
  return ['socat', `UNIX-LISTEN:${socket},fork,mode=0666,unlink-early`, 'TCP4:127.0.0.1:22'];
}

/** The ProxyCommand a user would write for this broker (netcat-openbsd's `nc -U`). */
export function proxyCommandFor(socket: string): string {
  return `nc -U ${socket}`;
}

/**
 * A ProxyCommand for a failing broker. ssh puts `exec` before a ProxyCommand,
 * so the multi-step ones run in their own `sh -c`; `%h` is ssh's HostName.
 */
export function faultCommandFor(fault: BrokerFault, socket: string): string {
  switch (fault) {
    case 'denied':
      return `sh -c 'echo "broker: access denied for %h" >&2; exit 1'`;
    case 'hang':
      return HANGING_BROKER.join(' ');
    case 'sso':
      return `sh -c 'echo "Open ${BROKER_SSO_URL} to log in" >&2; sleep 1; exec ${proxyCommandFor(socket)}'`;
  }
}

/** Those of `pids` that run the hanging broker (their /proc/PID/cmdline is exactly its argv). */
export function hangingBrokers(pids: readonly number[]): number[] {
  const want = HANGING_BROKER.map((a) => `${a}\0`).join('');
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === want;
    } catch {
      return false; // gone already
    }
  });
}

/**
 * Waits until the bridge hands out sshd's banner, connecting as any caller
 * would (a unix socket path reaches across namespaces). Throws with the
 * bridge's log when it exits first.
 */
export async function waitForBridge(socket: string, pid: number, log: string): Promise<void> {
  const ref = refOf(pid);
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (!isAlive(ref)) throw new Error(`broker bridge ${socket} exited: ${readLog(log)}`);
    const banner = await firstLine(socket).catch(() => '');
    if (banner.startsWith('SSH-2.0-')) return;
    if (Date.now() > deadline)
      throw new Error(`broker bridge ${socket} gave no ssh banner (got "${banner}"): ${readLog(log)}`);
    await sleep(50);
  }
}

function readLog(log: string): string {
  try {
    return readFileSync(log, 'utf8').trim().slice(-800);
  } catch {
    return '(no log)';
  }
}

function firstLine(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let got = '';
    const done = (line: string): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(got), 2000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\n')) done(got.split('\n')[0] ?? '');
    });
    s.on('end', () => done(got));
    s.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

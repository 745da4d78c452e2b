// Port forwards through one ControlMaster: a stdio forward per connection
// (`ssh -S CTL -W HOST:PORT`, what -L and -D carry), and remote forwards the
// master itself keeps (`ssh -S CTL -O forward -R SPEC`).

import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { EnvError } from '../errors.js';
import type { Endpoint } from '../forward/types.js';
import {
  forwardClosed,
  listenRefused,
  openClosed,
  openRefused,
  openTimeout,
} from '../transport/forward-errors.js';
import { remoteForwardSpec, stdioForwardTarget } from '../transport/forward-spec.js';
import { pipeDuplex } from '../transport/pipe-duplex.js';
import { remoteForwardArgv, stdioForwardArgv } from './argv.js';
import { claimOpenFailure, remoteForwardFailure } from './forward-failures.js';
import type { Master } from './master.js';

/** A mux client exits 255 when its master goes; the master's own exit may be reported a moment later. */
const MASTER_EXIT_WAIT_MS = 500;
/** The master answers a -O forward once the server did: a round trip, bounded in case the connection hangs. */
const REMOTE_FORWARD_TIMEOUT_MS = 30_000;

const STDERR_KEEP = 4096;

/**
 * A stdio forward to `to` through `master`. Resolves only once the server
 * confirmed the channel (the mux client's `master session id` line), so a
 * refused connection rejects, as with ssh2, with the reason the master
 * logged; `claimed` holds the log lines earlier refusals took.
 */
export function openStdioForward(
  sshPath: string,
  master: Master,
  to: Endpoint,
  timeoutMs: number,
  claimed: Set<number>,
): Promise<Duplex> {
  const host = master.host.name;
  if ('path' in to) {
    return Promise.reject(
      new EnvError(
        `cannot forward to the socket ${to.path} on ${host} with ssh_client: openssh: OpenSSH's ssh -W takes only HOST:PORT, not a socket path`,
        `set ssh_client: ssh2 for ${host} (the built-in client opens direct-streamlocal channels), or forward to a TCP port`,
        { host, step: 'forward' },
      ),
    );
  }
  if (!master.running) return Promise.reject(openClosed(host, to));
  const logStart = master.logPosition;
  // Detached, as the other mux clients: a Ctrl-C on the terminal must not cut a forwarded connection.
  const child = spawn(
    sshPath,
    stdioForwardArgv(master.controlSocket, master.host.ssh_name, stdioForwardTarget(to)),
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_KEEP)));
  child.stdin.on('error', () => undefined);
  return new Promise<Duplex>((resolve, reject) => {
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGTERM');
      child.stdin.destroy();
      child.stdout.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(openTimeout(host, to, timeoutMs)), timeoutMs);
    const opened = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // The mux client lives as long as the channel; killing it makes the master close the channel.
      const stream = pipeDuplex(child.stdout, child.stdin, () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      });
      // With its master gone the stream is over, whatever its pipes say: closed without an error, as
      // ssh2 closes its channels when the connection drops (callers learn of the drop from onClose).
      child.once('exit', () => {
        void master.exitedWithin(MASTER_EXIT_WAIT_MS).then((gone) => {
          if (gone && !stream.destroyed) stream.destroy();
        });
      });
      resolve(stream);
    };
    child.stderr.on('data', () => {
      if (/master session id: \d+/.test(stderr)) opened();
    });
    child.once('error', (err) =>
      fail(
        new EnvError(
          `cannot run ssh for ${host}: ${err.message}`,
          'check that ssh is installed',
          { host, step: 'forward' },
          { cause: err },
        ),
      ),
    );
    // Only the mux client holds its stderr (the master gets stdin and stdout): once that closes it
    // has exited, and every line it wrote is in.
    child.stderr.once('close', () => {
      if (settled) return;
      // The master logged why before it answered the mux client.
      const log = master.logFrom(logStart);
      const failure = claimOpenFailure(log.text, log.start, claimed);
      if (failure) return fail(openRefused(host, to, failure));
      void master.exitedWithin(MASTER_EXIT_WAIT_MS).then((gone) => {
        const said = stderr
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith('debug'))
          .pop();
        fail(
          gone || /Control socket connect/.test(stderr)
            ? openClosed(host, to)
            : openRefused(host, to, { kind: 'other', detail: said ?? '' }),
        );
      });
    });
  });
}

/**
 * Asks `master` to listen at `at` on its host and connect each connection to
 * `to` from this machine. The master does the connecting itself, so
 * connections are not reported (no RemoteForwardEvents). Resolves with the
 * port the server bound.
 */
export function addRemoteForward(
  sshPath: string,
  master: Master,
  at: { host: string; port: number } | { path: string },
  to: Endpoint,
  /** What the user asked to reach, for messages, when `to` is moshctl's own socket in between (remote-joiner.ts). */
  shownTo: Endpoint = to,
): Promise<{ port?: number }> {
  const host = master.host.name;
  const spec = remoteForwardSpec(at, shownTo);
  if (!master.running) return Promise.reject(forwardClosed(host, `listen for -R ${spec} on ${host}`));
  const child = spawn(
    sshPath,
    remoteForwardArgv(master.controlSocket, master.host.ssh_name, remoteForwardSpec(at, to)),
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-STDERR_KEEP)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(listenRefused(host, spec, at, `no answer within ${REMOTE_FORWARD_TIMEOUT_MS / 1000} s`));
    }, REMOTE_FORWARD_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(
        new EnvError(
          `cannot run ssh for ${host}: ${err.message}`,
          'check that ssh is installed',
          { host, step: 'forward' },
          { cause: err },
        ),
      );
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) {
        if ('path' in at) return resolve({});
        if (at.port !== 0) return resolve({ port: at.port });
        const port = Number(stdout.trim());
        if (Number.isInteger(port) && port > 0 && port < 65536) return resolve({ port });
        return reject(
          listenRefused(
            host,
            spec,
            at,
            `ssh did not say which port ${host} chose (it printed "${stdout.trim()}")`,
          ),
        );
      }
      void master.exitedWithin(MASTER_EXIT_WAIT_MS).then((gone) => {
        if (gone || /Control socket connect/.test(stderr))
          reject(forwardClosed(host, `listen for -R ${spec} on ${host}`));
        else reject(listenRefused(host, spec, at, remoteForwardFailure(stderr)));
      });
    });
  });
}

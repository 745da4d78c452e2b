// Port forwards over one ssh2 connection: a stream the server opens to an
// address it reaches (direct-tcpip, direct-streamlocal: what -L and -D
// carry), and listeners the server keeps for us (tcpip-forward,
// streamlocal-forward: -R), each accepted connection joined here to a local
// address with node:net.

import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Channel, Client, ClientChannel } from 'ssh2';
import type { SshHost } from '../config/types.js';
import type { Endpoint } from '../forward/types.js';
import {
  endpointText,
  forwardClosed,
  listenRefused,
  openClosed,
  openFailureOfCode,
  openRefused,
  openTimeout,
} from '../transport/forward-errors.js';
import type { RemoteForwardEvents } from '../transport/types.js';
import { remoteForwardSpec } from '../transport/forward-spec.js';

/** What forwarding needs of a hop (chain.ts's Hop, which imports this file). */
interface Hop {
  host: SshHost;
  client: Client;
  isClosed: () => boolean;
}

interface Ssh2Error extends Error {
  reason?: number | string;
}

/** What ssh2 raised when a channel open failed, in the shared terms. */
function refusal(hop: Hop, to: Endpoint, err: unknown): Error {
  const host = hop.host.name;
  const e = (err instanceof Error ? err : new Error(String(err))) as Ssh2Error;
  if (hop.isClosed() || /Not connected|No response from server/.test(e.message))
    return openClosed(host, to, e);
  if (/strictVendor/.test(e.message)) {
    return openRefused(host, to, {
      kind: 'other',
      detail: 'its ssh server is not OpenSSH, and only OpenSSH forwards to a Unix socket',
    });
  }
  const detail = e.message.replace(/^\(SSH\) Channel open failure:\s*/, '');
  return openRefused(host, to, openFailureOfCode(e.reason, detail));
}

/** See RemoteChain.openConnection. */
export function openConnection(hop: Hop, to: Endpoint, timeoutMs: number): Promise<Duplex> {
  const host = hop.host.name;
  return new Promise<Duplex>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(openTimeout(host, to, timeoutMs));
    }, timeoutMs);
    const opened = (err: Error | undefined, stream: ClientChannel | undefined): void => {
      if (done) {
        // Opened after the caller gave up on it.
        stream?.close();
        return;
      }
      done = true;
      clearTimeout(timer);
      if (err || !stream) reject(refusal(hop, to, err ?? new Error('no channel')));
      else resolve(stream);
    };
    try {
      if ('path' in to) hop.client.openssh_forwardOutStreamLocal(to.path, opened);
      // The originator address is informational (sshd logs it); this machine's own is no business of the server.
      else hop.client.forwardOut('127.0.0.1', 0, to.host, to.port, opened);
    } catch (err) {
      // ssh2 throws synchronously when the connection is already gone.
      opened(err as Error, undefined);
    }
  });
}

type Accept = () => Channel;
type Reject = () => void;
type Handler = (accept: Accept, reject: Reject) => void;

/**
 * The remote forwards of one connection. ssh2 reports every accepted
 * connection of every forward as one event, so forwards are told apart by
 * the address and port the server says it accepted on (as asked, with the
 * port it chose), or by the socket path.
 */
export class RemoteForwards {
  private readonly tcp = new Map<string, Handler>();
  private readonly unix = new Map<string, Handler>();

  constructor(private readonly hop: Hop) {
    hop.client.on('tcp connection', (info, accept, reject) => {
      const handler = this.tcp.get(tcpKey(info.destIP, info.destPort));
      if (handler) handler(accept, reject);
      else reject();
    });
    hop.client.on('unix connection', (info, accept, reject) => {
      const handler = this.unix.get(info.socketPath);
      if (handler) handler(accept, reject);
      else reject();
    });
  }

  /** See RemoteChain.remoteForward. */
  add(
    at: { host: string; port: number } | { path: string },
    to: Endpoint,
    events: RemoteForwardEvents = {},
  ): Promise<{ port?: number }> {
    const { hop } = this;
    const host = hop.host.name;
    const spec = remoteForwardSpec(at, to);
    const handler: Handler = (accept, reject) => join(hop, to, events, accept, reject);
    return new Promise((resolve, reject) => {
      const refused = (err: Error): void => {
        reject(
          hop.isClosed() || /Not connected|No response from server/.test(err.message)
            ? forwardClosed(host, `listen for -R ${spec} on ${host}`, err)
            : listenRefused(host, spec, at),
        );
      };
      try {
        if ('path' in at) {
          hop.client.openssh_forwardInStreamLocal(at.path, (err) => {
            if (err) return refused(err);
            this.unix.set(at.path, handler);
            resolve({});
          });
        } else {
          hop.client.forwardIn(at.host, at.port, (err, port) => {
            if (err) return refused(err);
            this.tcp.set(tcpKey(at.host, port), handler);
            resolve({ port });
          });
        }
      } catch (err) {
        refused(err as Error);
      }
    });
  }
}

function tcpKey(address: string, port: number): string {
  return `${address}\0${port}`;
}

/**
 * Connect to `to` here first, and only then accept the server's channel, as
 * ssh does: a refused connection is refused at the far end too, at once.
 */
function join(hop: Hop, to: Endpoint, events: RemoteForwardEvents, accept: Accept, reject: Reject): void {
  // Half-open, as a forwarded connection is: each side's EOF is passed on, not taken as the end of both.
  const sock: Socket =
    'path' in to
      ? netConnect({ path: to.path, allowHalfOpen: true })
      : netConnect({ host: to.host, port: to.port, allowHalfOpen: true });
  let channel: Channel | undefined;
  sock.once('error', (err: NodeJS.ErrnoException) => {
    if (channel) return;
    reject();
    events.onError?.(`connect to ${endpointText(to)} on this machine: ${err.code ?? err.message}`);
  });
  sock.once('connect', () => {
    let ch: Channel;
    try {
      ch = accept();
    } catch {
      // The connection went while we connected.
      sock.destroy();
      return;
    }
    channel = ch;
    events.onConnection?.();
    let closed = 0;
    const oneClosed = (): void => {
      // Both ends gone: the chain's state then says whether it broke under the connection.
      if (++closed === 2) events.onClosed?.(hop.isClosed());
    };
    let ended = false;
    ch.once('end', () => (ended = true));
    ch.on('error', () => undefined);
    sock.on('error', () => undefined);
    ch.once('close', () => {
      // Without an EOF first, the far end did not finish: drop ours rather than leave it waiting.
      if (!ended) sock.destroy();
      oneClosed();
    });
    sock.once('close', (hadError) => {
      if (hadError) ch.destroy();
      oneClosed();
    });
    sock.pipe(ch).pipe(sock);
  });
}

// Fakes for the forward consumers' unit tests: a supervisor whose chain is up
// or down on demand, and a chain whose "target" is this machine (openConnection
// connects here, names mapped by the test). Real sockets throughout: only the
// ssh layer is faked.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { KeptChain } from '../../src/execute/kept-chain.js';
import type { Endpoint } from '../../src/forward/types.js';
import type {
  ChannelOptions,
  LineChannel,
  RemoteChain,
  RemoteForwardEvents,
} from '../../src/transport/types.js';

export class FakeKept implements KeptChain {
  private chain: RemoteChain | undefined;
  private waiters: ((chain: RemoteChain) => void)[] = [];
  suspects = 0;
  asked: { host: string; timeoutMs: number }[] = [];

  whenUp(host: string, timeoutMs: number): Promise<RemoteChain> {
    this.asked.push({ host, timeoutMs });
    if (this.chain) return Promise.resolve(this.chain);
    return new Promise((resolve, reject) => {
      const waiter = (chain: RemoteChain): void => {
        clearTimeout(timer);
        resolve(chain);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error('no chain came'));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  up(chain: RemoteChain): void {
    this.chain = chain;
    for (const w of this.waiters.splice(0)) w(chain);
  }

  down(): void {
    this.chain = undefined;
  }

  suspect(): void {
    this.suspects++;
  }
}

type Listen = { host: string; port: number } | { path: string };

/** A chain whose target is this machine. Methods a test does not set throw. */
export class FakeChain implements RemoteChain {
  readonly hostNames = ['bastion', 'target'];
  readonly reachedAddress = '192.0.2.10';
  /** Names the "target" resolves: name → 127.0.0.1 or ::1. */
  names = new Map<string, string>();
  /** Every stream openConnection gave out, for tests that cut them. */
  streams: net.Socket[] = [];
  opened: { host: string; to: Endpoint }[] = [];
  /** Replaces openConnection's behaviour (a refusal, a hang). */
  onOpen: ((to: Endpoint) => Promise<Duplex>) | undefined;
  forwards: { host: string; at: Listen; to: Endpoint; events?: RemoteForwardEvents }[] = [];
  /** What remoteForward answers; a rejection when it throws. */
  onForward: (at: Listen) => Promise<{ port?: number }> = () => Promise.resolve({});

  constructor(readonly label = 'chain') {}

  openConnection(host: string, to: Endpoint, opts: { timeoutMs: number }): Promise<Duplex> {
    this.opened.push({ host, to });
    if (this.onOpen) return this.onOpen(to);
    return new Promise((resolve, reject) => {
      const target =
        'path' in to ? { path: to.path } : { host: this.names.get(to.host) ?? to.host, port: to.port };
      // allowHalfOpen as an ssh channel: an EOF one way leaves the other open.
      const s = net.connect({ ...target, allowHalfOpen: true });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${JSON.stringify(to)} from ${host}: timed out`));
      }, opts.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        this.streams.push(s);
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new Error(
            `connect to ${JSON.stringify(to)} from ${host}: ${e.code === 'ECONNREFUSED' ? 'Connection refused' : e.message}`,
          ),
        );
      });
    });
  }

  remoteForward(
    host: string,
    at: Listen,
    to: Endpoint,
    events?: RemoteForwardEvents,
  ): Promise<{ port?: number }> {
    this.forwards.push({ host, at, to, ...(events ? { events } : {}) });
    return this.onForward(at);
  }

  exec(): never {
    throw new Error('not faked');
  }
  execUntil(): never {
    throw new Error('not faked');
  }
  openChannel(_host: string, _command: string, _opts: ChannelOptions): Promise<LineChannel> {
    return Promise.reject(new Error('not faked'));
  }
  openStream(): never {
    throw new Error('not faked');
  }
  onClose(): () => void {
    return () => {};
  }
  destroy(): void {}
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A TCP server on loopback that the test closes; `handle` gets each connection. */
export async function tcpServer(
  handle: (s: net.Socket) => void,
  host = '127.0.0.1',
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    handle(s);
  });
  await new Promise<void>((resolve) => server.listen({ host, port: 0 }, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Echoes every byte back, and ends when the client ends. */
export const echo = (s: net.Socket): void => void s.pipe(s);

/** Connects, writes `data`, ends, and resolves with everything read until the other side ended or closed. */
export function roundTrip(
  target: { port: number; host?: string } | { path: string },
  data: Buffer | string,
): Promise<{ got: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const s = net.connect({ ...target, allowHalfOpen: true } as net.NetConnectOpts);
    const chunks: Buffer[] = [];
    let error: string | undefined;
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', (e) => (error = e.message));
    s.on('close', () => resolve({ got: Buffer.concat(chunks), ...(error ? { error } : {}) }));
    s.on('connect', () => s.end(data));
  });
}

/** Resolves once `check` holds, polling; rejects after `ms`. */
export async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// -L and -D kept for a whole session: the listener here stays bound from
// set-up to teardown whatever the chain does, so programs pointed at it never
// see "connection refused" from this machine during a roam. Each connection
// takes whichever chain is up when it is made (waiting a bounded time for
// one), and dies with that chain, as an ssh forward dies with its connection.
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { ChainConsumer, KeptChain } from '../kept-chain.js';
import { duration } from '../../transport/errors.js';
import type { RemoteChain } from '../../transport/types.js';
import { bindListener, removeBound, type Bound } from './listen.js';
import {
  replyCodeFor,
  SocksReply,
  socksReply,
  type SocksReplyCode,
  type SocksRequest,
} from '../../forward/socks.js';
import { readSocksRequest } from './socks-read.js';
import type { Endpoint, ForwardSpec, ForwardStatus } from '../../forward/types.js';

/**
 * How long a connection made while the chain is down waits for it to come
 * back before it is refused. Long enough for a roam (a new network, a new
 * chain within seconds), short enough that a program sees a failure rather
 * than hanging through a real outage.
 */
export const WAIT_MS = 20_000;
/** How long the target's sshd may take to open one connection (a name lookup there included). */
export const CONNECT_TIMEOUT_MS = 15_000;
/** A SOCKS client that has not finished its request by then is dropped (it holds a socket here). */
export const HANDSHAKE_MS = 30_000;
const GONE_RETRY_MS = 200;

export interface LocalForwardOptions {
  /** WAIT_MS unless set (tests use a short bound). */
  waitMs?: number;
  /** CONNECT_TIMEOUT_MS unless set. */
  connectTimeoutMs?: number;
  /** Called on every change of status(); the owner throttles (the record is saved at most every 0.5 s). */
  onChange?: () => void;
}

interface Connection {
  client: net.Socket;
  /** The chain it rides on, or is being opened on. */
  chain?: RemoteChain;
  remote?: Duplex;
  /** While openConnection runs: gives up on it (the chain went), so the connection waits for the next. */
  abandon?: () => void;
  ended: boolean;
}

/** Why a connection could not be made, with the SOCKS5 reply that says so. */
class Refusal extends Error {
  constructor(
    message: string,
    readonly code: SocksReplyCode,
  ) {
    super(message);
  }
}

export class LocalForward implements ChainConsumer {
  readonly name: string;
  private readonly server: net.Server;
  private bound: Bound | undefined;
  private readonly conns = new Set<Connection>();
  /** Chains detach() said are gone: a connection still opening on one tries the next chain. */
  private readonly gone = new WeakSet<RemoteChain>();
  private readonly waitMs: number;
  private readonly connectTimeoutMs: number;
  private counts = { total: 0, broken: 0, refused: 0 };
  private lastError: string | undefined;
  private closed = false;

  /** `host`: the target, where connections come out; `kept`: the session's supervisor. */
  constructor(
    readonly spec: ForwardSpec,
    readonly host: string,
    private readonly kept: KeptChain,
    private readonly opts: LocalForwardOptions = {},
  ) {
    if (spec.kind === 'remote') throw new Error(`bug: ${spec.text} is a remote forward`);
    if (spec.kind === 'local' && !spec.to) throw new Error(`bug: ${spec.text} has no destination`);
    this.name = spec.text;
    this.waitMs = opts.waitMs ?? WAIT_MS;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    // Half-open kept: a client that shuts down its sending side still gets the answer.
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => this.accept(s));
  }

  /** Binds the listener now; rejects with an EnvError naming the forward (address in use, no permission). */
  async start(): Promise<void> {
    this.bound = await bindListener(this.server, this.spec);
    this.changed();
  }

  /** Nothing to do: each connection asks the supervisor for the chain up at its moment. */
  attach(_chain: RemoteChain): Promise<void> {
    return Promise.resolve();
  }

  /** The chain is gone: connections over it end now, as ssh's do when its connection drops. */
  detach(chain: RemoteChain): void {
    this.gone.add(chain);
    for (const c of this.conns) {
      if (c.chain !== chain) continue;
      if (c.remote) this.end(c, true);
      else c.abandon?.();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of this.conns) {
      c.ended = true;
      c.client.destroy();
      c.remote?.destroy();
    }
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.bound) await removeBound(this.bound);
    this.changed();
  }

  status(): ForwardStatus {
    const port = 'port' in this.spec.listen && this.spec.listen.port === 0 ? this.bound?.port : undefined;
    return {
      text: this.spec.text,
      listening: this.server.listening && !this.closed,
      ...(port !== undefined ? { port } : {}),
      open: this.conns.size,
      ...this.counts,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private accept(client: net.Socket): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    const conn: Connection = { client, ended: false };
    this.conns.add(conn);
    this.counts.total++;
    // An error (a reset) is followed by close, where the connection is accounted for.
    client.on('error', () => {});
    client.once('close', () => {
      this.conns.delete(conn);
      // Ended cleanly both ways: the other side finishes what it still sends on its own. Cut
      // (a reset, the program killed): the other side goes too, and the chain is not to blame.
      if (!conn.ended && !(client.readableEnded && client.writableFinished)) {
        conn.ended = true;
        conn.remote?.destroy();
      }
      this.changed();
    });
    this.changed();
    void this.serve(conn);
  }

  private async serve(conn: Connection): Promise<void> {
    let request: SocksRequest | undefined;
    let to: Endpoint;
    if (this.spec.kind === 'dynamic') {
      const read = await readSocksRequest(conn.client, HANDSHAKE_MS);
      if ('fail' in read) this.refuse(conn, `SOCKS: ${read.fail.reason}`, read.fail.send);
      if (!('request' in read)) return;
      request = read.request;
      to = { host: request.host, port: request.port };
    } else to = this.spec.to as Endpoint;
    let remote: Duplex;
    try {
      remote = await this.connect(conn, to);
    } catch (e) {
      if (conn.client.destroyed || this.closed) return;
      const why = e instanceof Error ? e.message : String(e);
      this.refuse(conn, why, request && socksReply(request.version, e instanceof Refusal ? e.code : 1));
      return;
    }
    if (conn.client.destroyed || this.closed) {
      remote.destroy();
      return;
    }
    if (request) conn.client.write(socksReply(request.version, SocksReply.succeeded));
    this.join(conn, remote);
  }

  /** Waits for a chain (up to the bound) and opens the connection at the target; another chain if one goes meanwhile. */
  private async connect(conn: Connection, to: Endpoint): Promise<Duplex> {
    const deadline = Date.now() + this.waitMs;
    for (;;) {
      let chain: RemoteChain;
      try {
        chain = await this.kept.whenUp(this.host, Math.max(1, deadline - Date.now()));
      } catch (e) {
        throw new Refusal(
          `the ssh chain to ${this.host} was not up within ${duration(this.waitMs)}${e instanceof Error ? ` (${e.message})` : ''}`,
          SocksReply.networkUnreachable,
        );
      }
      if (conn.client.destroyed || this.closed) throw new Error('client gone');
      if (this.gone.has(chain)) {
        // The supervisor has not heard yet that this one went: ask again shortly, not in a tight loop.
        await delay(GONE_RETRY_MS);
        continue;
      }
      conn.chain = chain;
      try {
        return await this.openOn(conn, chain, to);
      } catch (e) {
        if (this.gone.has(chain) && Date.now() < deadline) continue;
        const why = e instanceof Error ? e.message : String(e);
        throw new Refusal(why, replyCodeFor(why));
      }
    }
  }

  private openOn(conn: Connection, chain: RemoteChain, to: Endpoint): Promise<Duplex> {
    const started = Date.now();
    return new Promise<Duplex>((resolve, reject) => {
      let settled = false;
      conn.abandon = () => {
        settled = true;
        reject(new Error('the chain went while connecting'));
      };
      chain.openConnection(this.host, to, { timeoutMs: this.connectTimeoutMs }).then(
        (stream) => {
          conn.abandon = undefined;
          if (settled) stream.destroy();
          else resolve(stream);
        },
        (e: unknown) => {
          conn.abandon = undefined;
          // No answer in time: the chain may be dead without knowing it yet.
          if (Date.now() - started >= this.connectTimeoutMs * 0.9) this.kept.suspect();
          if (!settled) reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Both ways, with backpressure; an end of input is passed on as an end (half-close), as ssh does. */
  private join(conn: Connection, remote: Duplex): void {
    conn.remote = remote;
    remote.on('error', (e) => {
      this.lastError = e.message;
      this.kept.suspect();
    });
    remote.once('close', () => {
      // A stream that closed without ending both ways was cut: the chain under it, most likely.
      if (!(remote.readableEnded && remote.writableFinished)) this.end(conn, true);
    });
    conn.client.pipe(remote);
    remote.pipe(conn.client);
  }

  private end(conn: Connection, broken: boolean): void {
    if (conn.ended) return;
    conn.ended = true;
    if (broken) this.counts.broken++;
    conn.client.destroy();
    conn.remote?.destroy();
    this.changed();
  }

  private refuse(conn: Connection, why: string, reply: Buffer | undefined): void {
    conn.ended = true;
    this.counts.refused++;
    this.lastError = why;
    if (reply) conn.client.end(reply, () => conn.client.destroy());
    else conn.client.destroy();
    this.changed();
  }

  private changed(): void {
    this.opts.onChange?.();
  }
}

// A live chain of SSH connections and the commands run over them. Commands
// run without a pty on purpose: with one, ending the connection kills them,
// and mosh-server and the relays must outlive it (they are stopped by pid).

import type { Client, ClientChannel, ExecOptions as ExecOptions2 } from 'ssh2';
import type { SshHost } from '../config/types.js';
import { EnvError } from '../errors.js';
import { closedWhileRunning, connectionClosed, execTimeout } from '../transport/errors.js';
import { byteChannel } from '../transport/byte-channel.js';
import { LineQueue } from '../transport/line-channel.js';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../forward/types.js';
import { agentNotAllowed, agentRefused, noAgentToForward } from '../transport/forward-errors.js';
import type {
  ByteChannel,
  ChannelOptions,
  CloseListener,
  ExecOptions,
  ExecResult,
  LineChannel,
  RemoteChain,
  RemoteForwardEvents,
} from '../transport/types.js';
import { openConnection, RemoteForwards } from './forwards.js';

export interface Hop {
  host: SshHost;
  client: Client;
  closed: Promise<void>;
  isClosed: () => boolean;
  /** The last error ssh2 reported on this connection, e.g. a keepalive timeout. */
  lastError: () => Error | undefined;
  /** Drop the underlying socket (or tunnel) without a goodbye. */
  destroy: () => void;
  /**
   * ConnectOptions.agentFor's hop only: the agent ssh2 was given to forward
   * (its connect config's `agent`), or why there is none.
   */
  agent?: { socket: string } | { missing: string };
}

const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
const CLOSE_GRACE_MS = 2_000;

export class SshChain implements RemoteChain {
  private closing: Promise<void> | undefined;
  private readonly listeners = new Set<CloseListener>();
  private readonly remoteForwards = new Map<Hop, RemoteForwards>();

  /**
   * @internal built by connectChain before the first hop is open, and given
   * each hop as it opens (`add`): steps on an open hop run while later hops
   * still connect. connectChain wires each hop's close event to `hopClosed`.
   */
  constructor(
    private readonly hops: Hop[] = [],
    public reachedAddress: string | undefined = undefined,
  ) {}

  /** See RemoteChain.localAddress. */
  localAddress: string | undefined;

  /** @internal ConnectOptions.agentFor: the one host a channel may forward the agent to. */
  agentFor: string | undefined;

  /** @internal */
  add(hop: Hop): void {
    this.hops.push(hop);
  }

  get hostNames(): string[] {
    return this.hops.map((h) => h.host.name);
  }

  /**
   * Called when a connection drops while the chain is open (not on `close()`);
   * when a hop drops, every hop behind it drops too and each is reported.
   * Returns a function that removes the listener.
   */
  onClose(cb: CloseListener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** @internal */
  hopClosed(hop: Hop): void {
    if (this.closing) return;
    for (const cb of this.listeners) cb(hop.host.name, hop.lastError());
  }

  /** Run `command` on `hostName` and wait for it to end. The command may appear in error messages; stdin never does. */
  async openChannel(hostName: string, command: string, opts: ChannelOptions): Promise<LineChannel> {
    const ch = await this.startChannel(hostName, command, opts.stdin, opts.forwardAgent === true);
    const channel = new LineQueue(
      (text) => ch.write(text),
      () => ch.end(),
    );
    ch.setEncoding('utf8');
    ch.stderr.setEncoding('utf8');
    ch.on('data', (d: string) => channel.push(d));
    ch.stderr.on('data', (d: string) => channel.pushStderr(d));
    ch.on('close', () => channel.finish());
    return channel;
  }

  async openStream(hostName: string, command: string, opts: { stdin: string }): Promise<ByteChannel> {
    const ch = await this.startChannel(hostName, command, opts.stdin, false);
    const channel = byteChannel(ch, ch, ch.stderr);
    ch.on('close', () => channel.finish());
    return channel;
  }

  /**
   * An exec channel kept open, `stdin` already written; its events come after
   * the caller subscribed. With `forwardAgent` (ConnectOptions.agentFor's host
   * only) the server is asked for agent forwarding first. sshd then keeps one
   * agent socket for the whole connection: later sessions on it see
   * SSH_AUTH_SOCK too (checked with OpenSSH 9.2).
   */
  private startChannel(
    hostName: string,
    command: string,
    stdin: string,
    forwardAgent: boolean,
  ): Promise<ClientChannel> {
    const hop = this.find(hostName);
    if (forwardAgent) {
      if (hostName !== this.agentFor) return Promise.reject(agentNotAllowed(hostName, this.agentFor));
      const agent = hop.agent ?? { missing: 'no agent was set up for it' };
      if ('missing' in agent) return Promise.reject(noAgentToForward(hostName, agent.missing));
    }
    // ssh2 reads `agentForward` from exec's options (client.js); its typings leave it out.
    const execOpts: ExecOptions2 & { agentForward?: boolean } = { agentForward: forwardAgent };
    return new Promise<ClientChannel>((resolve, reject) => {
      try {
        hop.client.exec(command, execOpts, (err, ch) => {
          if (err) {
            reject(
              forwardAgent && !hop.isClosed() && /agent forwarding/i.test(err.message)
                ? agentRefused(hostName, err)
                : connectionClosed(hostName, err),
            );
            return;
          }
          ch.write(stdin);
          resolve(ch);
        });
      } catch (err) {
        // ssh2 throws synchronously when the connection is already gone.
        reject(connectionClosed(hostName, err));
      }
    });
  }

  /**
   * See RemoteChain.openConnection: a direct-tcpip (direct-streamlocal for a
   * path) channel from `hostName`'s sshd. Resolves once the server confirmed
   * it; a refusal rejects with the server's reason.
   */
  openConnection(hostName: string, to: Endpoint, opts: { timeoutMs: number }): Promise<Duplex> {
    try {
      return openConnection(this.find(hostName), to, opts.timeoutMs);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * See RemoteChain.remoteForward. Each connection the server sends back is
   * joined here to `to` with node:net, and reported through `events`.
   */
  remoteForward(
    hostName: string,
    at: { host: string; port: number } | { path: string },
    to: Endpoint,
    events?: RemoteForwardEvents,
  ): Promise<{ port?: number }> {
    try {
      const hop = this.find(hostName);
      let forwards = this.remoteForwards.get(hop);
      if (!forwards) {
        forwards = new RemoteForwards(hop);
        this.remoteForwards.set(hop, forwards);
      }
      return forwards.add(at, to, events);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  exec(hostName: string, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run(hostName, command, opts.stdin, opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS, undefined);
  }

  /**
   * Run `command` and resolve as soon as `until(stdout so far)` is true or the
   * command's channel closes, whichever comes first: for reading a line such
   * as `MOSH CONNECT …` while the process goes on to daemonize.
   */
  execUntil(
    hostName: string,
    command: string,
    opts: ExecOptions & { until: (stdoutSoFar: string) => boolean; timeoutMs: number },
  ): Promise<ExecResult> {
    return this.run(hostName, command, opts.stdin, opts.timeoutMs, opts.until);
  }

  /**
   * Drop every connection at once, without the goodbye close() waits for: for
   * a chain whose network path is gone (the client roamed), where a polite
   * close would only wait out its grace period.
   */
  destroy(): void {
    this.closing ??= Promise.resolve();
    for (const hop of [...this.hops].reverse()) hop.destroy();
  }

  /** Close every connection, target first. Safe to call more than once. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const hop of [...this.hops].reverse()) await closeHop(hop);
    })();
    return this.closing;
  }

  private find(name: string): Hop {
    const hop = this.hops.find((h) => h.host.name === name);
    if (!hop) throw new Error(`host ${name} is not part of this SSH chain (${this.hostNames.join(' → ')})`);
    return hop;
  }

  private run(
    hostName: string,
    command: string,
    stdin: string | undefined,
    timeoutMs: number,
    until: ((stdout: string) => boolean) | undefined,
  ): Promise<ExecResult> {
    const hop = this.find(hostName);
    const where = { host: hostName, step: 'exec' };
    return new Promise<ExecResult>((resolve, reject) => {
      let settled = false;
      let channel: ClientChannel | undefined;
      let stdout = '';
      let stderr = '';
      let code: number | null = null;
      let exited = false;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          channel?.close();
          reject(err);
        } else resolve({ stdout, stderr, code });
      };
      const timer = setTimeout(() => {
        finish(execTimeout(hostName, command, { waitingForReady: until !== undefined, timeoutMs, stderr }));
      }, timeoutMs);

      const onOpen = (err: Error | undefined, ch: ClientChannel): void => {
        if (err) {
          finish(
            new EnvError(
              `cannot run a command on ${hostName}: ${err.message}`,
              `check that ${hostName} allows sessions for this user (no ForceCommand or restrict in authorized_keys)`,
              where,
              { cause: err },
            ),
          );
          return;
        }
        channel = ch;
        if (settled) {
          ch.close();
          return;
        }
        ch.on('data', (d: Buffer) => {
          if (settled) return;
          stdout += d.toString('utf8');
          if (until?.(stdout)) finish(undefined);
        });
        ch.stderr.on('data', (d: Buffer) => {
          if (!settled) stderr += d.toString('utf8');
        });
        ch.on('exit', (c: number | null) => {
          exited = true;
          code = typeof c === 'number' ? c : null;
        });
        ch.on('close', () => {
          if (!exited && hop.isClosed()) {
            finish(closedWhileRunning(hostName, command, hop.lastError()));
          } else finish(undefined);
        });
        // Write stdin and end it, so a command reading it sees EOF.
        ch.end(stdin ?? '');
      };

      try {
        hop.client.exec(command, onOpen);
      } catch (err) {
        // ssh2 throws synchronously when the connection is already gone.
        finish(connectionClosed(hostName, err));
      }
    });
  }
}

async function closedWithin(hop: Hop, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const closed = await Promise.race([hop.closed.then(() => true as const), late]);
  clearTimeout(timer);
  return closed;
}

/** End one connection politely, or drop its socket if it does not close in time. */
export async function closeHop(hop: Hop): Promise<void> {
  if (hop.isClosed()) return;
  try {
    hop.client.end();
  } catch {
    // Already half-gone: destroying below is all that is left to do.
  }
  if (await closedWithin(hop, CLOSE_GRACE_MS)) return;
  hop.destroy();
  await closedWithin(hop, CLOSE_GRACE_MS);
}

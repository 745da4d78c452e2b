// A live chain of ControlMasters and the commands run through them. Each
// command is its own short `ssh -S SOCKET` mux client: no new handshake, the
// master carries it. Commands run without a pty on purpose, as with ssh2: with
// one, ending the connection kills them, and mosh-server and the relays must
// outlive it (they are stopped by pid).

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Socket } from 'node:net';
import { EnvError } from '../errors.js';
import { closedWhileRunning, connectionClosed, execTimeout } from '../transport/errors.js';
import { byteChannel } from '../transport/byte-channel.js';
import { LineQueue } from '../transport/line-channel.js';
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../forward/types.js';
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
import type { AgentToForward } from '../transport/agent.js';
import { agentNotAllowed, noAgentToForward } from '../transport/forward-errors.js';
import { execArgv } from './argv.js';
import { addRemoteForward, openStdioForward } from './forwards.js';
import { removeControlDir } from './control-dir.js';
import { listenJoiner, type Joiner } from './remote-joiner.js';
import { droppedError } from './failures.js';
import { processLocalAddress } from './local-address.js';
import type { Master } from './master.js';

const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** A mux client exits 255 when its master goes; the master's own exit may be reported a moment later. */
const MASTER_EXIT_WAIT_MS = 500;

export class OpenSshChain implements RemoteChain {
  private closing: Promise<void> | undefined;
  private readonly listeners = new Set<CloseListener>();
  /** Hops already reported to listeners: a dropped hop takes every hop behind it along. */
  private readonly reported = new Set<number>();

  private readonly masters: Master[] = [];
  public reachedAddress: string | undefined;
  /** See RemoteChain.localAddress: read from /proc for the first master (local-address.ts). */
  localAddress: string | undefined;
  /** Per master, the log lines of refused stdio forwards already matched to an open (see claimOpenFailure). */
  private readonly claimedFailures = new Map<Master, Set<number>>();
  /** -R: where the target's connections come back to this machine (see remote-joiner.ts). */
  private readonly joiners = new Map<string, Joiner>();

  /**
   * @internal ConnectOptions.agentFor, whose master alone has ForwardAgent
   * yes, and the agent that master forwards (or why there is none).
   */
  agentFor: { host: string; agent: AgentToForward } | undefined;

  /**
   * @internal built by connectOpenSshChain before the first master starts, and
   * given each master once it is ready (`add`): steps on a ready hop run while
   * later hops still connect.
   */
  constructor(
    private readonly controlDir: string,
    private readonly sshPath: string,
  ) {}

  /** @internal */
  add(master: Master): void {
    const i = this.masters.push(master) - 1;
    if (i === 0 && master.sshPid !== undefined && !master.host.proxy_command)
      this.localAddress = processLocalAddress(master.sshPid, {
        address: this.reachedAddress,
        port: master.host.port,
      });
    master.onExit(() => this.hopExited(i));
  }

  get hostNames(): string[] {
    return this.masters.map((m) => m.host.name);
  }

  /** The processes behind each hop (ssh and its wrapper shell), client side first: for diagnostics and tests. */
  get processes(): { host: string; sshPid: number | undefined; wrapperPid: number | undefined }[] {
    return this.masters.map((m) => ({ host: m.host.name, sshPid: m.sshPid, wrapperPid: m.wrapperPid }));
  }

  onClose(cb: CloseListener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  private hopExited(index: number): void {
    if (this.closing || this.reported.has(index)) return;
    const master = this.masters[index] as Master;
    const error = droppedError(master.host, `${master.log}\n${master.stderr}`);
    // Every -R listens on the target, behind this hop or at it: what they carried is broken.
    for (const j of this.joiners.values()) j.close(true);
    for (let i = index; i < this.masters.length; i++) {
      if (this.reported.has(i)) continue;
      this.reported.add(i);
      for (const cb of this.listeners) cb((this.masters[i] as Master).host.name, error);
    }
  }

  /**
   * With `forwardAgent` (ConnectOptions.agentFor's host only) the mux client
   * asks for the agent (-A). sshd then keeps one agent socket for the whole
   * connection: later sessions through the same master see SSH_AUTH_SOCK too
   * (checked with OpenSSH 9.2). A server that refuses agent forwarding is not
   * reported (OpenSSH asks without wanting a reply): SSH_AUTH_SOCK is then unset.
   */
  openChannel(hostName: string, command: string, opts: ChannelOptions): Promise<LineChannel> {
    if (opts.forwardAgent) {
      if (hostName !== this.agentFor?.host)
        return Promise.reject(agentNotAllowed(hostName, this.agentFor?.host));
      const { agent } = this.agentFor;
      if ('missing' in agent) return Promise.reject(noAgentToForward(hostName, agent.missing));
    }
    return this.muxClient(hostName, command, opts.stdin, opts.forwardAgent === true, (child) => {
      const channel = new LineQueue(
        (text) => void child.stdin.write(text),
        () => child.stdin.end(),
      );
      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (d: string) => channel.push(d));
      child.stderr.on('data', (d: string) => channel.pushStderr(d));
      child.stdin.on('error', () => undefined);
      return channel;
    });
  }

  openStream(hostName: string, command: string, opts: { stdin: string }): Promise<ByteChannel> {
    return this.muxClient(hostName, command, opts.stdin, false, (child) =>
      byteChannel(child.stdin, child.stdout, child.stderr),
    );
  }

  /**
   * A mux client kept running for `command`, wrapped by `wrap` (which must
   * not write), then `stdin` written; the channel finishes when it exits.
   * Detached, as for exec: a Ctrl-C on the terminal must not cut a relay's channel.
   */
  private muxClient<C extends { finish: () => void }>(
    hostName: string,
    command: string,
    stdin: string,
    forwardAgent: boolean,
    wrap: (child: ChildProcessWithoutNullStreams) => C,
  ): Promise<C> {
    const master = this.masters.find((m) => m.host.name === hostName);
    if (!master) return Promise.reject(new Error(`host ${hostName} is not part of this SSH chain`));
    if (this.closing || !master.running) return Promise.reject(connectionClosed(hostName));
    const child = spawn(
      this.sshPath,
      execArgv(master.controlSocket, master.host.ssh_name, command, { forwardAgent }),
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true },
    );
    const channel = wrap(child);
    child.on('error', () => channel.finish());
    child.on('close', () => channel.finish());
    child.stdin.write(stdin);
    return Promise.resolve(channel);
  }

  /**
   * See RemoteChain.openConnection: one mux client per connection, `ssh -W`
   * through `hostName`'s master, whose stdin and stdout the master joins to
   * the channel. Resolves only once the server confirmed the channel, so a
   * refused connection rejects as with ssh2, with the reason the master
   * logged. A socket path is refused (OpenSSH's -W takes none). A half-close
   * by the far end shows only once the connection closes (the mux client
   * keeps its copy of stdout open until then).
   */
  openConnection(hostName: string, to: Endpoint, opts: { timeoutMs: number }): Promise<Duplex> {
    const master = this.masters.find((m) => m.host.name === hostName);
    if (!master) return Promise.reject(new Error(`host ${hostName} is not part of this SSH chain`));
    if (this.closing) return Promise.reject(connectionClosed(hostName));
    let claimed = this.claimedFailures.get(master);
    if (!claimed) {
      claimed = new Set();
      this.claimedFailures.set(master, claimed);
    }
    return openStdioForward(this.sshPath, master, to, opts.timeoutMs, claimed);
  }

  /**
   * See RemoteChain.remoteForward: `ssh -O forward -R` through `hostName`'s
   * master, to a Unix socket of moshctl's in the control folder, where each
   * connection is joined to `to` and counted (remote-joiner.ts): the master
   * would tell its mux clients nothing of the connections it carries.
   */
  async remoteForward(
    hostName: string,
    at: { host: string; port: number } | { path: string },
    to: Endpoint,
    events: RemoteForwardEvents = {},
  ): Promise<{ port?: number }> {
    const master = this.masters.find((m) => m.host.name === hostName);
    if (!master) throw new Error(`host ${hostName} is not part of this SSH chain`);
    if (this.closing || !master.running) return addRemoteForward(this.sshPath, master, at, to);
    // One socket per listening address, kept when the request fails: a master keeps
    // the spec of a refused -O forward, and would send a later connection to it.
    const key = JSON.stringify(at);
    let joiner = this.joiners.get(key);
    if (joiner) joiner.retarget(to, events);
    else {
      joiner = await listenJoiner(`${this.controlDir}/r${this.joiners.size}`, to, events);
      this.joiners.set(key, joiner);
    }
    return addRemoteForward(this.sshPath, master, at, { path: joiner.path }, to);
  }

  exec(hostName: string, command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    return this.run(hostName, command, opts.stdin, opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS, undefined);
  }

  execUntil(
    hostName: string,
    command: string,
    opts: ExecOptions & { until: (stdoutSoFar: string) => boolean; timeoutMs: number },
  ): Promise<ExecResult> {
    return this.run(hostName, command, opts.stdin, opts.timeoutMs, opts.until);
  }

  /** TERM every master at once, target first, without waiting: the network path is gone. */
  destroy(): void {
    this.closing ??= Promise.resolve();
    for (const j of this.joiners.values()) j.close(true);
    for (const m of [...this.masters].reverse()) m.kill();
    removeControlDir(this.controlDir);
  }

  /** Stop every master, target first, each waited for (bounded); then remove the sockets' directory. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const j of this.joiners.values()) j.close(false);
      try {
        for (const m of [...this.masters].reverse()) await m.stop();
      } finally {
        removeControlDir(this.controlDir);
      }
    })();
    return this.closing;
  }

  private run(
    hostName: string,
    command: string,
    stdin: string | undefined,
    timeoutMs: number,
    until: ((stdout: string) => boolean) | undefined,
  ): Promise<ExecResult> {
    const master = this.masters.find((m) => m.host.name === hostName);
    if (!master) {
      return Promise.reject(
        new Error(`host ${hostName} is not part of this SSH chain (${this.hostNames.join(' → ')})`),
      );
    }
    const where = { host: hostName, step: 'exec' };
    if (this.closing || !master.running) {
      return Promise.reject(connectionClosed(hostName));
    }
    return new Promise<ExecResult>((resolve, reject) => {
      // Detached (its own session): it never prompts (BatchMode), and a Ctrl-C
      // on the terminal must not kill a teardown command half-way.
      const child = spawn(this.sshPath, execArgv(master.controlSocket, master.host.ssh_name, command), {
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      let settled = false;
      let stdout = '';
      let stderr = '';
      const finish = (err: Error | undefined, code: number | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          child.kill('SIGTERM');
          reject(err);
        } else resolve({ stdout, stderr, code });
        // What runs on may go on writing (it is drained below) but must not keep Node alive.
        child.unref();
        for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as Socket).unref?.();
      };
      const timer = setTimeout(() => {
        finish(
          execTimeout(hostName, command, { waitingForReady: until !== undefined, timeoutMs, stderr }),
          null,
        );
      }, timeoutMs);

      child.stdout.setEncoding('utf8');
      child.stderr.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        if (settled) return;
        stdout += d;
        if (until?.(stdout)) finish(undefined, null);
      });
      child.stderr.on('data', (d: string) => {
        if (!settled) stderr += d;
      });
      child.stdin.on('error', () => undefined);
      child.on('error', (err) =>
        finish(
          new EnvError(
            `cannot run ssh for ${hostName}: ${err.message}`,
            'check that ssh is installed',
            where,
            {
              cause: err,
            },
          ),
          null,
        ),
      );
      child.on('close', (code: number | null) => {
        if (settled) return;
        // 255 is ssh's own failure; it means the connection dropped only if the master went too.
        if (code !== 255) return finish(undefined, code);
        void master
          .exitedWithin(MASTER_EXIT_WAIT_MS)
          .then((gone) => finish(gone ? closedWhileRunning(hostName, command) : undefined, code));
      });
      // Write stdin and end it, so a command reading it sees EOF.
      child.stdin.end(stdin ?? '');
    });
  }
}

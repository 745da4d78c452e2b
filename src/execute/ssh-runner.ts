// The Runner over real hosts: one ssh connection per hop, opened once and
// reused for every step and for teardown. A chain that dropped meanwhile (it
// will when the client roams or sleeps) is opened again when next needed;
// a hop that cannot be reached is remembered so teardown does not wait on it
// once per process.
import type { SshHost } from '../config/types.js';
import { parseRelayAlive, parseRelayStop, relayAliveCommand, stopRelayCommand } from '../relay/commands.js';
import { EnvError } from '../errors.js';
import { routeClient } from '../plan/route-client.js';
import type { ForwardStep, RelayStep, ServerStep } from '../plan/types.js';
import { forwarderLaunch } from '../tcp/launch.js';
import { readForwarderPrograms } from '../tcp/script.js';
import { TcpTunnel } from './tcp-tunnel.js';
import {
  moshServerFailure,
  moshServerKeptCommand,
  moshServerSilent,
  parseMoshServerOutput,
  parseKeeper,
  parseServerExit,
  parseServerStarted,
  stopKeeperCommand,
  redactKey,
} from '../remote/mosh-server.js';
import { aliveCommand, checkPid, parseAlive, parseStop, stopByPidCommand } from '../remote/processes.js';
import { parseSimple, QUIT } from '../relay/control.js';
import { closedWhileRunning, connectionDropped } from '../transport/errors.js';
import { awaitLine } from '../transport/line-channel.js';
import type { ConnectChain, ExecResult, LineChannel, Prompter, RemoteChain } from '../transport/types.js';
import { preloadClient, startMoshClient, type ClientProcess } from './client.js';
import { SshdSessions } from './sshd-sessions.js';
import { isLocalAddress, localAddresses, watchLocalAddresses } from './address-watch.js';
import { RelayHealer, type RelayRestarted, type WatchedRelay } from './relay-heal.js';
import { launchRelay, startFallback, startRelayOn, wireRelay, type RelayOnHop } from './relay-start.js';
import type { ForwardStarted, ProcessKind, RelayStarted, Runner, ServerStarted } from './runner.js';

const SERVER_TIMEOUT_MS = 20_000;
/** A relay answers QUIT at once; past this, it is stopped by pid over a fresh exec. */
const QUIT_WAIT_MS = 2_000;

async function saidBye(channel: LineChannel): Promise<boolean> {
  return (
    (await awaitLine(channel, (l) => (parseSimple(l) === 'BYE' ? true : undefined), QUIT_WAIT_MS)) === true
  );
}

/** The first hop was reached through a ProxyCommand: its address as this machine resolves it. */
async function numericAddress(host: SshHost): Promise<string> {
  const { lookup } = await import('node:dns/promises');
  try {
    return (await lookup(host.address)).address;
  } catch (cause) {
    throw new EnvError(
      `mosh-client needs a numeric address for ${host.name}, and ${host.address} does not resolve on this machine`,
      `${host.name} is reached through a ProxyCommand; mosh's UDP must reach it directly, so give it an address this machine resolves`,
      { host: host.name, step: 'client' },
      { cause },
    );
  }
}
/** A live connection runs `true` well within this; a dead one never does. */
const RECHECK_TIMEOUT_MS = 3_000;
/** On a chain opened long ago, which may be dead without knowing it; a relay stop takes up to 2 s. */
const REUSED_STOP_TIMEOUT_MS = 5_000;

/**
 * A stop or status command on a fresh chain: the host's connect_timeout (how
 * long the user lets a hop answer) plus the few seconds a stop itself takes.
 */
function stopTimeoutMs(host: SshHost | undefined): number {
  return ((host?.connect_timeout ?? 10) + 5) * 1000;
}

export interface SshRunnerOptions {
  signal?: AbortSignal;
  /** Where login prompts go (passwords, OTP codes, passphrases); none in status and down. */
  prompter?: Prompter;
  /** MOSHCTL_SSH_CONFIG: `ssh -F FILE` for the openssh client. */
  sshConfigFile?: string;
  /** Wraps every chain this runner opens, e.g. to log each remote command (`--debug`). */
  wrapChain?: (chain: RemoteChain) => RemoteChain;
}

/** MOSHCTL_SSH_CONFIG as a runner option: `ssh -F FILE` for the openssh client. */
export function sshConfigOption(
  env: Readonly<Record<string, string | undefined>>,
): Pick<SshRunnerOptions, 'sshConfigFile'> {
  return env.MOSHCTL_SSH_CONFIG ? { sshConfigFile: env.MOSHCTL_SSH_CONFIG } : {};
}

async function transport(route: readonly SshHost[]): Promise<ConnectChain> {
  if (routeClient(route) === 'openssh') return (await import('../openssh/connect.js')).connectOpenSshChain;
  return (await import('../ssh/connect.js')).connectChain;
}

export class SshRunner implements Runner {
  private chain: RemoteChain | undefined;
  /** How many hosts of the route the open chain reaches; 0 when none is open or it dropped. */
  private reach = 0;
  private client: ClientProcess | undefined;
  /** The relays this runner started, by host (one per hop), with their control channels. */
  private readonly relays = new Map<string, WatchedRelay>();
  /** The mosh-server this runner started, with the channel it was started in (see moshServerKeptCommand). */
  private server: { pid: number; channel: LineChannel } | undefined;
  /** While mosh-client owns the terminal nothing may prompt: a reconnect for healing goes without. */
  private quiet = false;
  /** An open in progress: teardown asks for several hosts at once, and they must share one chain. */
  private opening: Promise<RemoteChain> | undefined;
  /** Hosts from this index on could not be reached; asking again would only wait for the same timeout. */
  private unreachableFrom: { index: number; error: unknown } | undefined;
  /** The sshd process of each connection, so those of dead connections can be ended (a roam). */
  private readonly sshd = new SshdSessions();
  /** tcp transport: the local port and the forwarder behind it, and the chain its stream runs over. */
  private tunnel: TcpTunnel | undefined;
  private tunnelChain: RemoteChain | undefined;
  /** This machine's addresses changed while mosh-client ran, and the chain has not answered since. */
  private suspect = false;
  /** This machine's addresses when the open chain was opened. */
  private openedFrom = '';
  /** Whether connect() opened the first chain; later chains learn their sshd sessions at once. */
  private connected = false;
  /** While connect() runs: the chain so far, for steps on the hops already open. */
  private partial: { chain: RemoteChain; reach: number } | undefined;
  /** From connect() until mosh-client starts: the session is being set up. */
  private settingUp = false;
  /**
   * Hosts whose connection dropped while the session was set up. Set-up does
   * not go on over a new chain: the relays and mosh-server started over the
   * old one could no longer be told anything, so it fails naming the first of them.
   */
  private readonly droppedInSetup = new Set<string>();

  /** `route`: every host of the session, client side first, target last. */
  constructor(
    private readonly route: SshHost[],
    private readonly opts: SshRunnerOptions = {},
  ) {}

  async connect(onReady?: (host: string) => void): Promise<{ reachedAddress: string }> {
    this.settingUp = true;
    const opened = this.open(this.route.length, true, (chain, hops) => {
      this.partial = { chain, reach: hops };
      const host = this.route[hops - 1];
      if (host) onReady?.(host.name);
    });
    this.opening = opened;
    let chain: RemoteChain;
    try {
      chain = await opened;
      // Loaded while mosh-server and the relays start (remote execs, mostly waiting), not while
      // connecting: its ~60 ms of module loading held up the handshakes' replies (connect took ~70 ms longer).
      preloadClient();
    } catch (e) {
      // Steps that ran on the hops before the failed one are stopped over a chain that ends before it.
      this.markUnreachable(e);
      throw e;
    } finally {
      this.opening = undefined;
      this.partial = undefined;
    }
    const first = this.route[0];
    if (!first) throw new Error('bug: a session without hosts');
    return { reachedAddress: chain.reachedAddress ?? (await numericAddress(first)) };
  }

  /** A hop's connection dropped during set-up: the error naming the first such hop of the route. */
  private setupDropped(): EnvError | undefined {
    const host = this.route.find((h) => this.droppedInSetup.has(h.name));
    return host ? connectionDropped(host.name, 'the session was being set up') : undefined;
  }

  /**
   * A set-up step: one that fails because a hop's connection dropped says so,
   * naming that hop, rather than whatever the step itself saw (a closed
   * channel, a relay that stopped answering).
   */
  private async setupStep<T>(run: () => Promise<T>): Promise<T> {
    const dropped = this.setupDropped();
    if (dropped) throw dropped;
    try {
      return await run();
    } catch (e) {
      // The chain's close events may come a moment after the channel's own.
      await new Promise((r) => setImmediate(r));
      throw this.setupDropped() ?? e;
    }
  }

  startServer(step: ServerStep): Promise<ServerStarted> {
    return this.setupStep(() => this.startServerNow(step));
  }

  private async startServerNow(step: ServerStep): Promise<ServerStarted> {
    const chain = await this.ensure(step.host);
    const command = moshServerKeptCommand(step);
    const channel = await chain.openChannel(step.host, command, { stdin: '' });
    // mosh-server's output, both streams merged, up to the line saying its parent exited.
    const lines: string[] = [];
    const code = await awaitLine(
      channel,
      (l) => {
        lines.push(l);
        return parseServerExit(l);
      },
      SERVER_TIMEOUT_MS,
    );
    const started = lines.map(parseServerStarted).find((x) => x !== undefined);
    const output = lines.join('\n');
    // Once a pid is parsed the server runs, whatever the exit code: it must be recorded to be stopped.
    const parsed = parseMoshServerOutput(output, output);
    // The message may quote mosh-server's output; never let a key through.
    // moshctl's own marker lines are not mosh-server's words.
    const said = redactKey(
      `${channel.stderr()}\n${lines.filter((l) => !l.startsWith('MOSHCTL-SERVER ')).join('\n')}`,
    );
    if (!parsed) {
      channel.end();
      if (code === undefined) {
        // Read before the keeper is stopped below: stopping it closes the channel too.
        if (channel.isClosed) throw closedWhileRunning(step.host, 'mosh-server new');
        // A mosh-server that said nothing in time is stopped with its keeper, not left behind.
        const keeper = lines.map(parseKeeper).find((x) => x !== undefined);
        if (keeper !== undefined) await this.ask(step.host, stopKeeperCommand(keeper)).catch(() => undefined);
        const f = moshServerSilent(SERVER_TIMEOUT_MS, said);
        throw new EnvError(f.message, f.hint, { host: step.host, step: 'start mosh-server' });
      }
      const f = moshServerFailure(code, said);
      throw new EnvError(f.message, f.hint, { host: step.host, step: 'start mosh-server' });
    }
    this.server = { pid: parsed.pid, channel };
    return { ...parsed, ...(started ? { started } : {}) };
  }

  startRelay(step: RelayStep, forwardPort?: number): Promise<RelayStarted | undefined> {
    return this.setupStep(async () => {
      const chain = await this.ensure(step.host);
      if (forwardPort !== undefined)
        return this.track(step, forwardPort, await startRelayOn(chain, step, forwardPort));
      const launched = await launchRelay(chain, step);
      if (launched === 'fallback') return undefined;
      return this.track(step, undefined, launched);
    });
  }

  wireRelay(step: RelayStep, forwardPort: number): Promise<RelayStarted | undefined> {
    return this.setupStep(async () => {
      const relay = this.relays.get(step.host);
      if (relay?.channel) {
        await wireRelay(relay.channel, step, forwardPort);
        relay.forwardPort = forwardPort;
        return undefined;
      }
      // Neither python3 nor perl ran there: socat starts now that its target is known.
      return this.track(
        step,
        forwardPort,
        await startFallback(await this.ensure(step.host), step, forwardPort, undefined),
      );
    });
  }

  private track(step: RelayStep, forwardPort: number | undefined, r: RelayOnHop): RelayStarted {
    const { channel, ...started } = r;
    this.relays.set(step.host, {
      step,
      forwardPort: forwardPort ?? 0,
      pid: started.pid,
      started: started.started,
      port: started.port,
      channel,
      restarts: 0,
      stopping: false,
    });
    return started;
  }

  /**
   * Heals the relays while mosh-client runs (see relay-heal.ts). Returns the
   * function that stops watching; it must be called before teardown.
   */
  watchRelays(
    onRestart: (e: RelayRestarted) => void,
    onTrouble: (host: string, why: string) => void,
  ): () => void {
    this.quiet = true;
    this.trouble = onTrouble;
    const healer = new RelayHealer({
      relays: () => [...this.relays.values()],
      alive: (r) => this.alive(r.step.host, r.pid, 'relay', r.started),
      start: async (step, forwardPort) =>
        startRelayOn(await this.ensure(step.host, false), step, forwardPort),
      onRestart,
      onTrouble,
    });
    return () => {
      healer.stop();
      this.quiet = false;
    };
  }

  startForward(
    step: ForwardStep,
    serverPort: number,
    udp?: { address: string; port: number },
    onSwitch?: (why: string) => void,
  ): Promise<ForwardStarted> {
    return this.setupStep(() => this.startForwardNow(step, serverPort, udp, onSwitch));
  }

  private async startForwardNow(
    step: ForwardStep,
    serverPort: number,
    udp?: { address: string; port: number },
    onSwitch?: (why: string) => void,
  ): Promise<ForwardStarted> {
    const launch = forwarderLaunch(
      { runtime: 'auto', to: { address: step.to.address, port: serverPort }, idleTimeout: step.idleTimeout },
      await readForwarderPrograms(),
    );
    const tunnel = new TcpTunnel({
      host: step.host,
      // The first forwarder is part of setup; later ones come back quietly over a new chain.
      open: async (first) => {
        const chain = await this.ensure(step.host, first, first);
        this.tunnelChain = chain;
        return chain.openStream(step.host, launch.command, { stdin: launch.stdin });
      },
      onTrouble: (why) => this.trouble?.(step.host, `the tcp tunnel could not come back yet: ${why}`),
      ...(udp && step.udpFirst
        ? {
            udpFirst: {
              ...udp,
              host: step.udpFirst.to.host,
              switchAfterMs: step.udpFirst.switchAfterMs,
              silenceMs: step.udpFirst.silenceMs,
              onSwitch: (why: string) => onSwitch?.(why),
            },
          }
        : {}),
    });
    this.tunnel = tunnel;
    const port = await tunnel.start();
    return { port, mode: tunnel.mode, ...(tunnel.runtime ? { runtime: tunnel.runtime } : {}) };
  }

  /** Where background trouble goes while mosh-client owns the terminal (set by watchRelays). */
  private trouble: ((host: string, why: string) => void) | undefined;

  async runClient(address: string, port: number, key: string): Promise<number> {
    // Set-up is over: from here a dropped chain is opened again when needed (a roam).
    this.settingUp = false;
    this.client = await startMoshClient(address, port, key);
    // Learnt now, not during setup, where it would only add execs to wait for.
    if (this.chain) this.sshd.learn(this.chain);
    const unwatch = watchLocalAddresses(() => {
      this.suspect = true;
      void this.recheck();
    });
    // A signal that came while mosh-client was being started found nothing to end.
    if (this.opts.signal?.aborted) this.client.kill('SIGTERM');
    try {
      return await this.client.exited;
    } finally {
      unwatch();
      this.client = undefined;
      // What healing could not reach during the session may be back: teardown tries again.
      this.unreachableFrom = undefined;
    }
  }

  /**
   * This machine's addresses changed (a roam): a chain that no longer answers
   * is replaced at once, quietly, so healing has one and the old connections'
   * sshd sessions are ended over it, instead of waiting 45 s for keepalives.
   */
  private async recheck(): Promise<void> {
    const chain = this.chain;
    const first = this.route[0];
    const last = this.route[this.route.length - 1];
    if (!first || !last) return;
    // The address it left from is gone: dead for sure, no probe to wait out.
    if (chain?.localAddress && !isLocalAddress(chain.localAddress)) {
      if (this.chain === chain) this.drop();
    } else if (chain) {
      try {
        await chain.exec(first.name, 'true', { timeoutMs: RECHECK_TIMEOUT_MS });
        if (this.chain === chain) {
          // It answered after the change: the change did not concern it.
          this.suspect = false;
          this.openedFrom = localAddresses();
        }
        return;
      } catch {
        if (this.chain === chain) this.drop();
      }
    }
    await this.ensure(last.name, false, false).catch(() => undefined);
  }

  /** Ends a running mosh-client (SIGHUP/SIGTERM to moshctl, or `moshctl down` from elsewhere). */
  killClient(signal: NodeJS.Signals): boolean {
    this.client?.kill(signal);
    return this.client !== undefined;
  }

  async stop(
    host: string,
    pid: number,
    kind: ProcessKind,
    started?: string,
  ): Promise<'stopped' | 'gone' | 'other'> {
    // The addresses changed since the chain opened (even too briefly before for
    // the watcher to see) and it has not answered since: after a roam it is dead,
    // and a QUIT and an exec over it would only wait out their timeouts.
    if (this.chain && (this.suspect || localAddresses() !== this.openedFrom)) {
      this.suspect = false;
      this.drop();
    }
    // A process whose channel is still open is told to stop over it: no new exec.
    const kept = kind === 'relay' ? await this.quitRelay(pid) : await this.stopKeptServer(pid);
    if (kept) return kept;
    // A relay is stopped with its whole process group (socat's children outlive their parent).
    const command =
      kind === 'mosh-server' ? stopByPidCommand(pid, 'mosh-server', started) : stopRelayCommand(pid, started);
    const r = await this.ask(host, command);
    const outcome = kind === 'mosh-server' ? parseStop(r.stdout) : parseRelayStop(r.stdout);
    if (!outcome) {
      throw new EnvError(
        `stopping pid ${pid} failed: ${r.stderr.trim() || `exit code ${r.code}`}`,
        `log in to ${host} and stop pid ${pid} by hand`,
        { host, step: `stop ${kind}` },
      );
    }
    return outcome;
  }

  /**
   * Whether a process moshctl started still runs as that process (same pid,
   * start and command line); undefined when the host's answer made no sense.
   */
  async alive(host: string, pid: number, kind: ProcessKind, started?: string): Promise<boolean | undefined> {
    if (kind === 'relay')
      return parseRelayAlive((await this.ask(host, relayAliveCommand(pid, started))).stdout);
    const command = aliveCommand([{ pid, marker: 'mosh-server', ...(started ? { started } : {}) }]);
    return parseAlive((await this.ask(host, command)).stdout).get(pid);
  }

  /** QUIT over the relay's control channel; undefined when that did not work. */
  private async quitRelay(pid: number): Promise<'stopped' | undefined> {
    const relay = [...this.relays.values()].find((r) => r.pid === pid);
    if (!relay) return undefined;
    relay.stopping = true;
    const channel = relay.channel;
    if (!channel || channel.isClosed) return undefined;
    channel.send(QUIT);
    // Only its BYE says the relay quit: a channel also closes when the connection under it drops.
    return (await saidBye(channel)) ? 'stopped' : undefined;
  }

  /** The pid over the channel mosh-server was started in; undefined when that did not work. */
  private async stopKeptServer(pid: number): Promise<'stopped' | 'gone' | 'other' | undefined> {
    const channel = this.server?.pid === pid ? this.server.channel : undefined;
    if (!channel || channel.isClosed) return undefined;
    channel.send(String(checkPid(pid)));
    return awaitLine(channel, (l) => parseStop(l), QUIT_WAIT_MS);
  }

  /**
   * Runs a short command on `host` for teardown or status. Not abortable:
   * teardown runs after the signal that aborted setup, and must still open
   * the chain again if it dropped meanwhile (a roam, a suspend).
   */
  async ask(host: string, command: string): Promise<ExecResult> {
    const reused = this.chain !== undefined && this.reach > this.indexOf(host);
    const chain = await this.ensure(host, false);
    try {
      return await chain.exec(host, command, {
        timeoutMs: reused ? REUSED_STOP_TIMEOUT_MS : stopTimeoutMs(this.route[this.indexOf(host)]),
      });
    } catch (e) {
      if (!reused) throw e;
      // A roam takes the client's address away under the open connections, and
      // keepalives take 45 s to notice: drop the chain and try once on a new one.
      if (this.chain === chain) this.drop();
      return (await this.ensure(host, false)).exec(host, command, {
        timeoutMs: stopTimeoutMs(this.route[this.indexOf(host)]),
      });
    }
  }

  /**
   * Starts `command` on `host` with `stdin` written first and keeps its channel
   * open (doctor's UDP echo). The caller ends it; the command must exit on EOF.
   */
  async openChannel(host: string, command: string, stdin: string): Promise<LineChannel> {
    return (await this.ensure(host)).openChannel(host, command, { stdin });
  }

  /** The end of the session: the tcp tunnel, then old sshd sessions being ended, then the chain. */
  async close(): Promise<void> {
    this.tunnel?.stop();
    await this.sshd.settled();
    await this.closeChain();
  }

  private async closeChain(): Promise<void> {
    const chain = this.chain;
    this.chain = undefined;
    this.reach = 0;
    await chain?.close();
  }

  private indexOf(host: string): number {
    const index = this.route.findIndex((h) => h.name === host);
    if (index < 0) throw new Error(`bug: ${host} is not on this session's route`);
    return index;
  }

  private drop(): void {
    const chain = this.chain;
    this.chain = undefined;
    this.reach = 0;
    if (chain) this.sshd.lost(chain, chain.hostNames);
    if (chain && chain === this.tunnelChain) this.tunnel?.streamLost();
    chain?.destroy();
  }

  /**
   * A chain that reaches `host`, opened (again) if needed; `abortable` for
   * setup steps, not teardown; `remember`: a hop that cannot be reached is not
   * tried again (teardown must not wait for the same timeout once per process).
   */
  private async ensure(host: string, abortable = true, remember = true): Promise<RemoteChain> {
    const index = this.indexOf(host);
    if (this.partial && this.partial.reach > index) return this.partial.chain;
    while (this.opening) await this.opening.catch(() => undefined);
    if (this.chain && this.reach > index) return this.chain;
    if (this.unreachableFrom && index >= this.unreachableFrom.index) throw this.unreachableFrom.error;
    // Open as far as the route goes (short of a hop known to be unreachable, which
    // would only cost its timeout again), so a later request for a deeper host reuses it.
    this.opening = this.open(this.unreachableFrom?.index ?? this.route.length, abortable);
    try {
      return await this.opening;
    } catch (e) {
      const failed = remember ? this.markUnreachable(e) : -1;
      // The full route failed (a host behind is gone): settle for reaching this host.
      if (index + 1 === this.route.length || failed <= index) throw e;
      this.opening = this.open(index + 1, abortable);
      return await this.opening;
    } finally {
      this.opening = undefined;
    }
  }

  /** Remembers the host a connect failed at; returns its index, -1 when the error names none. */
  private markUnreachable(e: unknown): number {
    const failed = e instanceof EnvError ? this.route.findIndex((h) => h.name === e.where.host) : -1;
    if (failed >= 0) this.unreachableFrom = { index: failed, error: e };
    return failed;
  }

  private async open(
    hops: number,
    abortable = true,
    onReady?: (chain: RemoteChain, hops: number) => void,
  ): Promise<RemoteChain> {
    await this.closeChain();
    const connectChain = await transport(this.route);
    // One wrapper per chain: the one onReady hands out is the one that is returned.
    const wrapped = new WeakMap<RemoteChain, RemoteChain>();
    const wrap = (c: RemoteChain): RemoteChain => {
      let w = wrapped.get(c);
      if (!w) wrapped.set(c, (w = this.opts.wrapChain?.(c) ?? c));
      return w;
    };
    const chain = wrap(
      await connectChain(this.route.slice(0, hops), {
        ...(onReady ? { onReady: (c: RemoteChain, n: number) => onReady(wrap(c), n) } : {}),
        ...(this.opts.signal && abortable ? { signal: this.opts.signal } : {}),
        ...(this.opts.prompter && !this.quiet ? { prompter: this.opts.prompter } : {}),
        ...(this.opts.sshConfigFile ? { sshConfigFile: this.opts.sshConfigFile } : {}),
      }),
    );
    this.chain = chain;
    this.reach = hops;
    this.openedFrom = localAddresses();
    // Once any hop drops, everything behind it is gone too: reopen on next use.
    chain.onClose((host) => {
      if (this.settingUp) this.droppedInSetup.add(host);
      if (this.chain === chain) this.reach = 0;
      this.sshd.lost(chain, [host]);
      if (chain === this.tunnelChain) this.tunnel?.streamLost();
    });
    if (this.connected) {
      this.sshd.endOrphans(chain);
      this.sshd.learn(chain);
    }
    this.connected = true;
    return chain;
  }
}

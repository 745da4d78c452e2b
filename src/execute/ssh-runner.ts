// The Runner over real hosts: the steps of set-up, healing and teardown as
// remote commands over the one ssh chain a ChainKeeper keeps (a connection
// per hop, opened again when it dropped), and mosh-client on this machine.
import type { SshHost } from '../config/types.js';
import { parseRelayAlive, parseRelayStop, relayAliveCommand, stopRelayCommand } from '../relay/commands.js';
import { EnvError } from '../errors.js';
import type { ForwardSpec, ForwardStatus } from '../forward/types.js';
import type {
  AgentStep,
  ClientProgram,
  ForwardStep,
  Plan,
  PortForwardStep,
  RelayStep,
  ServerStep,
} from '../plan/types.js';
import type { SessionReport } from '../remote/sshd-session.js';
import { forwarderLaunch } from '../tcp/launch.js';
import { readForwarderPrograms } from '../tcp/script.js';
import { TcpTunnel, type PathChange } from './tcp-tunnel.js';
import { newProbeKey } from '../relay/probe.js';
import { parseAgentUnlink } from '../forward/agent-link.js';
import { AgentLink, unlinkAgentCommand } from './forward/agent.js';
import { LocalForward } from './forward/local.js';
import { RemoteForward } from './forward/remote.js';
import {
  aliveCommand,
  checkPid,
  parseAlive,
  parseStop,
  stopByPidCommand,
  type Liveness,
  type StopOutcome,
} from '../remote/processes.js';
import { parseSimple, QUIT } from '../relay/control.js';
import { connectionDropped } from '../transport/errors.js';
import { awaitLine } from '../transport/line-channel.js';
import type { ExecResult, LineChannel, RemoteChain } from '../transport/types.js';
import { startMoshClient, type ClientProcess } from './client.js';
import { ChainKeeper, type ChainOptions } from './chain-keeper.js';
import { ChainSupervisor } from './chain-supervisor.js';
import type { ChainConsumer } from './kept-chain.js';
import { RelayHealer, type WatchedRelay } from './relay-heal.js';
import { launchRelay, startFallback, startRelayOn, wireRelay, type RelayOnHop } from './relay-start.js';
import { startMoshServer } from './server-start.js';
import { KEEPER_MARK, stopKeeperCommand } from '../remote/mosh-server.js';
import type {
  AgentState,
  ForwardStarted,
  KeepEvents,
  OnStarted,
  ProcessKind,
  RelayStarted,
  Runner,
  ServerStarted,
} from './runner.js';

/** doctor's forwarding probes: a connection or an answer, well within a hop's connect time. */
const PROBE_TIMEOUT_MS = 10_000;

/** A relay answers QUIT at once; past this, it is stopped by pid over a fresh exec. */
const QUIT_WAIT_MS = 2_000;

async function saidBye(channel: LineChannel): Promise<boolean> {
  return (
    (await awaitLine(channel, (l) => (parseSimple(l) === 'BYE' ? true : undefined), QUIT_WAIT_MS)) === true
  );
}

/** The first hop was reached through a ProxyCommand: its address as this machine resolves it, if it does. */
async function numericAddress(host: SshHost): Promise<string | undefined> {
  const { lookup } = await import('node:dns/promises');
  return lookup(host.address).then(
    (r) => r.address,
    () => undefined,
  );
}
/** On a chain opened long ago, which may be dead without knowing it; a relay stop takes up to 2 s. */
const REUSED_STOP_TIMEOUT_MS = 5_000;

/**
 * A stop or status command on a fresh chain: the host's connect_timeout (how
 * long the user lets a hop answer) plus the few seconds a stop itself takes.
 */
function stopTimeoutMs(host: SshHost | undefined): number {
  return ((host?.connect_timeout ?? 10) + 5) * 1000;
}

export type SshRunnerOptions = ChainOptions;

/**
 * The hosts where a set-up step of `plan` runs a command that also says the
 * hop's session process (ChainOptions.sessionsFromSetup): mosh-server's
 * keeper on the target, and a python3 or perl relay (any relay that is not
 * socat or nc from the start). Those hops get no exec of their own for it.
 */
export function sessionsFromSetup(plan: Pick<Plan, 'steps'>): string[] {
  return plan.steps
    .filter((s) => s.kind === 'server' || (s.kind === 'relay' && !s.targetAtStart))
    .map((s) => s.host);
}

/** MOSHCTL_SSH_CONFIG as a runner option: `ssh -F FILE` for the openssh client. */
export function sshConfigOption(
  env: Readonly<Record<string, string | undefined>>,
): Pick<SshRunnerOptions, 'sshConfigFile'> {
  return env.MOSHCTL_SSH_CONFIG ? { sshConfigFile: env.MOSHCTL_SSH_CONFIG } : {};
}

export class SshRunner implements Runner {
  private readonly chains: ChainKeeper;
  private client: ClientProcess | undefined;
  /** The relays this runner started, by host (one per hop), with their control channels. */
  private readonly relays = new Map<string, WatchedRelay>();
  /** The mosh-server this runner started, with the channel it was started in (see moshServerKeptCommand). */
  private server: { pid: number; channel: LineChannel } | undefined;
  /** The one supervisor of the kept chain: everything that lives on the chain is its consumer. */
  private readonly supervisor: ChainSupervisor;
  /** tcp transport: the local port and the forwarder behind it. */
  private tunnel: TcpTunnel | undefined;
  /** transport auto: the relay before the target answers probes carrying this key (src/relay/probe.ts). */
  private readonly probeKey = newProbeKey();
  /** While mosh-client runs (keep): relay healing. */
  private healer: RelayHealer | undefined;
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
  ) {
    this.chains = new ChainKeeper(route, opts, {
      onChainOpened: (chain) => this.supervisor.opened(chain),
      onHostDropped: (host) => {
        if (this.settingUp) this.droppedInSetup.add(host);
      },
      onChainLost: (chain, why) => this.supervisor.lost(chain, why),
    });
    // A record whose route is empty (damaged, or a test's) has nothing to keep.
    this.supervisor = new ChainSupervisor(this.chains, route[route.length - 1]?.name ?? '');
  }

  async connect(onReady?: (host: string) => void): Promise<{ reachedAddress: string | undefined }> {
    this.settingUp = true;
    const chain = await this.chains.connect(onReady);
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

  startServer(step: ServerStep, onStarted?: OnStarted): Promise<ServerStarted> {
    return this.setupStep(async () => {
      const chain = await this.chains.ensure(step.host);
      const session = this.sessionReport(chain, step.host);
      try {
        const { channel, ...started } = await startMoshServer(
          chain,
          step,
          (command) => this.ask(step.host, command),
          onStarted,
          session.said,
        );
        this.server = { pid: started.pid, channel };
        return started;
      } finally {
        session.done();
      }
    });
  }

  /**
   * What a set-up command over `chain` says of `host`'s session process goes to
   * the keeper (`said`); `done` once it ended, so a host whose command said
   * nothing is asked by an exec of its own (see sessionsFromSetup).
   */
  private sessionReport(
    chain: RemoteChain,
    host: string,
  ): { said: (r: SessionReport) => void; done: () => void } {
    let said = false;
    return {
      said: (r) => {
        said = true;
        this.chains.tellSession(chain, host, r);
      },
      done: () => {
        if (!said) this.chains.tellSession(chain, host, undefined);
      },
    };
  }

  startRelay(
    step: RelayStep,
    forwardPort?: number,
    onStarted?: OnStarted,
  ): Promise<RelayStarted | undefined> {
    return this.setupStep(async () => {
      const chain = await this.chains.ensure(step.host);
      if (forwardPort !== undefined)
        return this.track(
          step,
          forwardPort,
          await startRelayOn(chain, step, forwardPort, onStarted, this.probeKeyFor(step)),
        );
      const session = this.sessionReport(chain, step.host);
      try {
        const launched = await launchRelay(chain, step, onStarted, session.said);
        if (launched === 'fallback') return undefined;
        return this.track(step, undefined, launched);
      } finally {
        session.done();
      }
    });
  }

  wireRelay(step: RelayStep, forwardPort: number, onStarted?: OnStarted): Promise<RelayStarted | undefined> {
    return this.setupStep(async () => {
      const relay = this.relays.get(step.host);
      if (relay?.channel) {
        relay.probing = await wireRelay(relay.channel, step, forwardPort, this.probeKeyFor(step));
        relay.forwardPort = forwardPort;
        return undefined;
      }
      // Neither python3 nor perl ran there: socat starts now that its target is known.
      return this.track(
        step,
        forwardPort,
        await startFallback(await this.chains.ensure(step.host), step, forwardPort, undefined, onStarted),
      );
    });
  }

  private track(step: RelayStep, forwardPort: number | undefined, r: RelayOnHop): RelayStarted {
    const { channel, probing, ...started } = r;
    this.relays.set(step.host, {
      step,
      forwardPort: forwardPort ?? 0,
      pid: started.pid,
      started: started.started,
      port: started.port,
      channel,
      restarts: 0,
      stopping: false,
      runtime: started.runtime,
      probing: probing === true,
    });
    return started;
  }

  /**
   * transport auto (a relay step with a fallback): the relay before the target
   * answers the session's UDP probes itself; the ones before it pass them on,
   * so an answer proves every relay on the way.
   */
  private probeKeyFor(step: RelayStep): Buffer | undefined {
    const target = this.route[this.route.length - 1]?.name;
    return step.fallback !== undefined && step.forwardTo.host === target ? this.probeKey : undefined;
  }

  /**
   * From set-up's end until the returned function is called (before
   * teardown): the supervisor keeps the chain (opened again after a roam,
   * quietly), what lives on it re-attaches, and the relays are healed.
   */
  keep(events: KeepEvents): () => Promise<void> {
    this.trouble = events.onTrouble;
    const healer = new RelayHealer({
      relays: () => [...this.relays.values()],
      alive: (r) => this.alive(r.step.host, r.pid, 'relay', r.started),
      start: async (step, forwardPort) =>
        startRelayOn(
          await this.chains.ensure(step.host, false),
          step,
          forwardPort,
          undefined,
          this.probeKeyFor(step),
        ),
      onRestart: (e) => {
        events.onRelayRestart(e);
        // A session on tcp may find UDP through the new relay at once.
        this.tunnel?.probeSoon();
      },
      onTrouble: events.onTrouble,
    });
    this.healer = healer;
    const relayHosts = [...this.relays.keys()];
    const deepest = this.route.filter((h) => relayHosts.includes(h.name)).pop();
    // After a reconnect the relays' control channels are gone with the old chain: look at each once.
    const healing: ChainConsumer | undefined = deepest && {
      name: 'relay healing',
      host: deepest.name,
      attach: () => healer.checkAll(),
    };
    if (healing) this.supervisor.watch(healing);
    this.supervisor.keep({
      onTrouble: events.onTrouble,
      ...(events.onChain ? { onState: events.onChain } : {}),
    });
    return async () => {
      healer.stop();
      this.healer = undefined;
      await this.supervisor.stop();
    };
  }

  startForward(
    step: ForwardStep,
    server: { address: string; port: number },
    udp?: { address: string; port: number },
    onSwitch?: (change: PathChange) => void,
  ): Promise<ForwardStarted> {
    return this.setupStep(() => this.openTunnel(step, server, udp, onSwitch));
  }

  /**
   * transport auto: how a session on tcp finds UDP again (the relay before
   * the target answers probes), or why it cannot.
   */
  private udpReturn(target: string): { key: Buffer } | { noReturn: string } {
    const last = [...this.relays.values()].find((r) => r.step.forwardTo.host === target);
    if (!last) return { noReturn: 'no relay stands before the target to answer UDP probes' };
    if (!last.probing)
      return { noReturn: `the relay on ${last.step.host} (${last.runtime ?? '?'}) cannot answer UDP probes` };
    return { key: this.probeKey };
  }

  /** The tcp tunnel of startForward: a forwarder on the target behind a port on this machine. */
  private async openTunnel(
    step: ForwardStep,
    server: { address: string; port: number },
    udp?: { address: string; port: number },
    onSwitch?: (change: PathChange) => void,
  ): Promise<ForwardStarted> {
    const launch = forwarderLaunch(
      { runtime: 'auto', to: server, idleTimeout: step.idleTimeout },
      await readForwarderPrograms(),
    );
    const back = udp && step.udpFirst ? this.udpReturn(step.host) : undefined;
    const tunnel = new TcpTunnel({
      host: step.host,
      kept: this.supervisor,
      open: (chain) => chain.openStream(step.host, launch.command, { stdin: launch.stdin }),
      onTrouble: (why) => this.trouble?.(step.host, `the tcp tunnel could not come back yet: ${why}`),
      ...(udp && step.udpFirst
        ? {
            udpFirst: {
              ...udp,
              host: step.udpFirst.to.host,
              switchAfterMs: step.udpFirst.switchAfterMs,
              silenceMs: step.udpFirst.silenceMs,
              onSwitch: (change: PathChange) => onSwitch?.(change),
              ...(back && 'key' in back
                ? {
                    probe: {
                      key: back.key,
                      // Unanswered for long: a relay may have died unseen (its channel went with a roam).
                      onStuck: () => void this.healer?.checkAll(),
                    },
                  }
                : {}),
            },
          }
        : {}),
    });
    this.tunnel = tunnel;
    const port = await tunnel.start();
    // tcp: its first forwarder starts now, over the set-up chain; auto: only once UDP goes silent.
    await this.supervisor.add(tunnel);
    return {
      port,
      mode: tunnel.mode,
      ...(tunnel.runtime ? { runtime: tunnel.runtime } : {}),
      ...(back && 'noReturn' in back ? { noReturn: back.noReturn } : {}),
    };
  }

  /**
   * A port forward as a consumer of the kept chain: -L and -D bind here now
   * (a bind failure fails the step), -R is asked of the target now and by the
   * supervisor on each new chain.
   */
  startPortForward(step: PortForwardStep, onStatus: (s: ForwardStatus) => void): Promise<ForwardStatus> {
    return this.setupStep(async () => {
      const onChange = (): void => onStatus(forward.status());
      const forward =
        step.spec.kind === 'remote'
          ? new RemoteForward(step.spec, step.host, { onChange })
          : new LocalForward(step.spec, step.host, this.supervisor, { onChange });
      if (forward instanceof LocalForward) await forward.start();
      // A refused -R stays with the supervisor (asked again), and the step says why.
      await this.supervisor.add(forward);
      return forward.status();
    });
  }

  /** Agent forwarding: a consumer whose channel on each chain points the stable link at the agent. */
  startAgent(step: AgentStep, onStatus: (s: AgentState) => void): Promise<void> {
    return this.setupStep(async () => {
      const link = new AgentLink(
        { host: step.host, socket: step.socket },
        {
          onChange: () => {
            const { up, lastError } = link.status();
            onStatus({ up, ...(lastError !== undefined ? { lastError } : {}) });
          },
        },
      );
      await this.supervisor.add(link);
    });
  }

  async unlinkAgent(host: string, socket: string): Promise<'removed' | 'gone'> {
    const r = await this.ask(host, unlinkAgentCommand(socket));
    const outcome = parseAgentUnlink(r.stdout);
    if (outcome === undefined || typeof outcome === 'object') {
      throw new EnvError(
        `removing the agent link ${socket} failed: ${typeof outcome === 'object' ? outcome.error : r.stderr.trim() || `exit code ${r.code}`}`,
        `log in to ${host} and remove ${socket} by hand`,
        { host, step: 'unlink agent' },
      );
    }
    // Not a link of moshctl's (a file someone put there): left alone.
    return outcome === 'unlinked' ? 'removed' : 'gone';
  }

  /**
   * doctor: whether `host` lets `spec` through, asked as `up` would (a
   * connection opened from it, or its listener requested); rejects with the
   * refusal. Nothing is kept: a -R listener goes with the chain, a connection is closed at once.
   */
  async probeForward(host: string, spec: ForwardSpec): Promise<void> {
    const chain = await this.chains.ensure(host);
    if (spec.kind === 'remote') {
      if (!spec.to) throw new Error(`bug: ${spec.text} has no destination`);
      const l = spec.listen;
      const at = 'path' in l ? { path: l.path } : { host: l.host ?? 'localhost', port: l.port };
      await chain.remoteForward(host, at, spec.to);
      return;
    }
    // -D's destinations are the client's to choose: the target's own sshd shows whether it forwards at all.
    const to = spec.to ?? { host: '127.0.0.1', port: 22 };
    const stream = await chain.openConnection(host, to, { timeoutMs: PROBE_TIMEOUT_MS });
    stream.destroy();
  }

  /** doctor: whether `host` gets the agent in a channel that asks for it (the runner's agentFor must be `host`). */
  async probeAgent(host: string): Promise<boolean> {
    const chain = await this.chains.ensure(host);
    const channel = await chain.openChannel(
      host,
      'if [ -S "$SSH_AUTH_SOCK" ]; then echo MOSHCTL-AGENT-YES; else echo MOSHCTL-AGENT-NO; fi',
      { stdin: '', forwardAgent: true },
    );
    try {
      return (await channel.nextLine(PROBE_TIMEOUT_MS)) === 'MOSHCTL-AGENT-YES';
    } finally {
      channel.end();
    }
  }

  /** Where background trouble goes while mosh-client owns the terminal (set by keep). */
  private trouble: ((host: string, why: string) => void) | undefined;

  async runClient(program: ClientProgram, address: string, port: number, key: string): Promise<number> {
    // Set-up is over: from here a dropped chain is opened again when needed (a roam).
    this.settingUp = false;
    this.client = await startMoshClient(program, address, port, key);
    // A signal that came while mosh-client was being started found nothing to end.
    if (this.opts.signal?.aborted) this.client.kill('SIGTERM');
    try {
      return await this.client.exited;
    } finally {
      this.client = undefined;
      // What healing could not reach during the session may be back: teardown tries again.
      this.chains.forgetUnreachable();
    }
  }

  /** Ends a running mosh-client (SIGHUP/SIGTERM to moshctl, or `moshctl down` from elsewhere). */
  killClient(signal: NodeJS.Signals): boolean {
    this.client?.kill(signal);
    return this.client !== undefined;
  }

  async stop(host: string, pid: number, kind: ProcessKind, started?: string): Promise<StopOutcome> {
    // After a roam the chain is dead: a QUIT and an exec over it would only wait out their timeouts.
    this.chains.dropIfMoved();
    // A shell whose mosh-server was never recorded: it stops the mosh-server it started.
    if (kind === 'keeper') {
      const r = await this.ask(host, stopKeeperCommand(pid, started));
      const outcome = parseStop(r.stdout);
      if (outcome) return outcome;
      throw new EnvError(
        `stopping pid ${pid} failed: ${r.stderr.trim() || `exit code ${r.code}`}`,
        `log in to ${host} and stop pid ${pid} and the mosh-server under it by hand`,
        { host, step: 'stop mosh-server' },
      );
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
   * start and command line): unknown when the host cannot tell, undefined
   * when its answer made no sense.
   */
  async alive(host: string, pid: number, kind: ProcessKind, started?: string): Promise<Liveness | undefined> {
    if (kind === 'relay')
      return parseRelayAlive((await this.ask(host, relayAliveCommand(pid, started))).stdout);
    const marker = kind === 'keeper' ? KEEPER_MARK : 'mosh-server';
    const command = aliveCommand([{ pid, marker, ...(started ? { started } : {}) }]);
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
  private async stopKeptServer(pid: number): Promise<StopOutcome | undefined> {
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
    const reused = this.chains.reaches(host);
    const chain = await this.chains.ensure(host, false);
    const hop = this.route[this.chains.indexOf(host)];
    try {
      return await chain.exec(host, command, {
        timeoutMs: reused ? REUSED_STOP_TIMEOUT_MS : stopTimeoutMs(hop),
      });
    } catch (e) {
      if (!reused) throw e;
      // A roam takes the client's address away under the open connections, and
      // keepalives take 45 s to notice: drop the chain and try once on a new one.
      if (this.chains.current === chain) this.chains.drop();
      return (await this.chains.ensure(host, false)).exec(host, command, { timeoutMs: stopTimeoutMs(hop) });
    }
  }

  /**
   * Starts `command` on `host` with `stdin` written first and keeps its channel
   * open (doctor's UDP echo). The caller ends it; the command must exit on EOF.
   */
  async openChannel(host: string, command: string, stdin: string): Promise<LineChannel> {
    return (await this.chains.ensure(host)).openChannel(host, command, { stdin });
  }

  /** The end of the session: what lives on the chain (the tcp tunnel, forwards), then old sshd sessions being ended, then the chain. */
  async close(): Promise<void> {
    await this.supervisor.stop();
    await this.chains.close();
  }
}

// Keeping the relays alive while mosh-client runs. A relay's control channel
// closing without a QUIT, or a PING going unanswered, triggers a check over
// ssh; a relay that died (killed, OOM, the bastion's sshd restarted) is
// started again on the same port, forwarding to the same next hop, and the
// session resumes by itself: mosh-server sees a new source port, an
// authenticated roam. A relay whose channel merely dropped (the ssh
// connection went with a roam) still runs and is left alone.
import type { RelayStep } from '../plan/types.js';
import type { Liveness } from '../remote/processes.js';
import { PING, parseSimple, toLine } from '../relay/control.js';
import { awaitLine } from '../transport/line-channel.js';
import type { LineChannel } from '../transport/types.js';
import type { RelayStarted } from './runner.js';

const PING_INTERVAL_MS = 15_000;
const PONG_WAIT_MS = 5_000;

/** A relay this session started, as the runner tracks it. */
export interface WatchedRelay {
  step: RelayStep;
  /** The next hop's port it forwards to (changes when an inner relay had to move). */
  forwardPort: number;
  pid: number;
  /** The relay's start (see STARTED in remote/processes.ts), when known: alive checks and stops by pid check it. */
  started?: string | undefined;
  port: number;
  channel: LineChannel | undefined;
  restarts: number;
  /** Set by a deliberate stop, so its closing channel is not healed. */
  stopping: boolean;
  /** python3, perl, socat or nc. */
  runtime?: string;
  /** It holds the session's probe key (transport auto, the relay before the target): it answers probes. */
  probing?: boolean;
}

export interface RelayRestarted {
  host: string;
  oldPid: number;
  relay: RelayStarted;
  restarts: number;
}

export interface HealDeps {
  relays: () => WatchedRelay[];
  /** alive, dead, unknown (the host cannot tell), or undefined (its answer made no sense). */
  alive: (r: WatchedRelay) => Promise<Liveness | undefined>;
  /** Starts a relay for the step again, on `listen` ports; resolves with it and its channel. */
  start: (
    step: RelayStep,
    forwardPort: number,
  ) => Promise<RelayStarted & { channel?: LineChannel | undefined; probing?: boolean }>;
  onRestart: (e: RelayRestarted) => void;
  /** What went wrong while healing; never thrown into the session. */
  onTrouble: (host: string, why: string) => void;
}

/** Waits for PONG, reading past other replies (an `OK TO` after a retarget). */
async function pong(channel: LineChannel): Promise<boolean> {
  return (
    (await awaitLine(channel, (l) => (parseSimple(l) === 'PONG' ? true : undefined), PONG_WAIT_MS)) === true
  );
}

export class RelayHealer {
  private readonly timer: NodeJS.Timeout;
  private stopped = false;
  private readonly busy = new Set<WatchedRelay>();

  constructor(private readonly deps: HealDeps) {
    for (const r of deps.relays()) this.watch(r);
    this.timer = setInterval(() => void this.pingAll(), PING_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }

  /**
   * A new chain (after a roam or an outage): the old one took every control
   * channel with it, so each relay is looked at once, and a dead one started again.
   */
  async checkAll(): Promise<void> {
    await Promise.all(
      this.deps.relays().map((r) => (r.channel && !r.channel.isClosed ? Promise.resolve() : this.check(r))),
    );
  }

  private watch(r: WatchedRelay): void {
    const channel = r.channel;
    void channel?.closed.then(() => {
      if (r.channel === channel) void this.check(r);
    });
  }

  private async pingAll(): Promise<void> {
    for (const r of this.deps.relays()) {
      const channel = r.channel;
      if (this.stopped || r.stopping || this.busy.has(r) || !channel || channel.isClosed) continue;
      channel.send(PING);
      // A silent channel is as good as gone: look at the relay itself.
      if (!(await pong(channel))) {
        channel.end();
        void this.check(r);
      }
    }
  }

  private async check(r: WatchedRelay): Promise<void> {
    if (this.stopped || r.stopping || this.busy.has(r)) return;
    this.busy.add(r);
    try {
      const alive = await this.deps.alive(r);
      // Only a relay known dead is started again: unknown (the host cannot tell) is left be.
      if (alive !== 'dead' || this.stopped || r.stopping) return;
      await this.restart(r);
    } catch (e) {
      this.deps.onTrouble(r.step.host, e instanceof Error ? e.message : String(e));
    } finally {
      this.busy.delete(r);
    }
  }

  private async restart(r: WatchedRelay): Promise<void> {
    const oldPid = r.pid;
    const samePort = { ...r.step, listen: { from: r.port, to: r.port } };
    let started;
    try {
      started = await this.deps.start(samePort, r.forwardPort);
    } catch (e) {
      // mosh-client cannot be told a new port: only an inner relay may move.
      if (this.isFirst(r)) throw e;
      started = await this.deps.start(r.step, r.forwardPort);
    }
    const { channel, probing, ...relay } = started;
    if (relay.port !== r.port) this.retarget(r, relay.port);
    Object.assign(r, {
      pid: relay.pid,
      started: relay.started,
      port: relay.port,
      channel,
      restarts: r.restarts + 1,
      runtime: relay.runtime,
      probing: probing === true,
    });
    this.watch(r);
    this.deps.onRestart({ host: r.step.host, oldPid, relay, restarts: r.restarts });
  }

  private isFirst(r: WatchedRelay): boolean {
    return !this.deps.relays().some((o) => o.step.forwardTo.host === r.step.host);
  }

  /** The relay before a moved one forwards to its new port from now on. */
  private retarget(moved: WatchedRelay, port: number): void {
    const before = this.deps.relays().find((o) => o.step.forwardTo.host === moved.step.host);
    if (!before) return;
    before.forwardPort = port;
    before.channel?.send(toLine(before.step.forwardTo.address, port));
  }
}

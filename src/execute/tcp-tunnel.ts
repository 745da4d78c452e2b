// moshctl's end of the tcp transport: a UDP port on this machine's loopback
// for mosh-client, and a forwarder on the target fed through the ssh chain
// (src/tcp). Each datagram goes as one frame; replies come back the same way.
// When the chain dies (a roam), the supervisor of the kept chain opens a new
// one and attaches this tunnel to it: a new forwarder, and the datagrams go
// on: mosh-client keeps its port and sees only a pause, mosh-server sees a
// new source port (an authenticated roam).
// transport auto: the port first sends on by UDP (UdpPath); the stream only
// starts when UDP goes unanswered. While the stream carries, UDP is probed
// through the relays (ProbeSchedule); when a probe is answered, mosh's
// datagrams go both ways for a trial, and the first mosh reply that comes by
// UDP moves the session back to it (mosh-server follows whichever copy of a
// datagram reached it first, an authenticated roam, so a trial that fails
// costs the session nothing). Silence moves it to the stream again.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EnvError } from '../errors.js';
import { encodeFrame } from '../tcp/framing.js';
import type { ReadyLine } from '../tcp/launch.js';
import { ForwarderOutput } from '../tcp/output.js';
import type { ByteChannel, RemoteChain } from '../transport/types.js';
import type { ChainConsumer, KeptChain } from './kept-chain.js';
import { UdpPath, type UdpPathOptions } from './udp-path.js';
import { ProbeSchedule } from './udp-return.js';

const READY_TIMEOUT_MS = 20_000;
/** Between attempts to bring the stream back: soon at first, then every few seconds. */
const RETRY_MS = [0, 1_000, 2_000, 5_000];
/** How long a stream that must come back waits for the supervisor's chain before trying again. */
const CHAIN_WAIT_MS = 60_000;
/** A trial of UDP (probes were answered) lasts until a mosh reply comes by UDP, or this long. */
const TRIAL_MS = 10_000;
/** Once a mosh reply came by UDP, the server has turned to it: the stream's stragglers get this long. */
const LINGER_MS = 2_000;
/** In a trial, each datagram's copy for the stream waits this long (see start()). */
const HEAD_START_MS = 5;
/** Back on UDP for less than this before it went silent: that return counts as failed. */
const HELD_MS = 60_000;

/** transport auto: how datagrams travel now, why that changed, and how often it did. */
export interface PathChange {
  now: 'udp' | 'tcp';
  why: string;
  changes: number;
}

export interface TunnelOptions {
  host: string;
  /** The supervisor of the kept chain: the stream comes back over the chain it keeps. */
  kept: KeptChain;
  /** Starts a forwarder on the target over `chain` and returns its stream. */
  open: (chain: RemoteChain) => Promise<ByteChannel>;
  /** Why the stream could not be brought back (said after mosh-client exits). */
  onTrouble?: (why: string) => void;
  /** transport auto: UDP first; the stream starts when it goes unanswered, and `onSwitch` is told why. */
  udpFirst?: Omit<UdpPathOptions, 'onReply' | 'onSilent' | 'onProbeAnswer'> & {
    onSwitch: (change: PathChange) => void;
    /**
     * The relay before the target answers probes carrying `key`: on tcp, UDP
     * is probed and taken back when it passes. Absent: tcp for the rest of the session.
     */
    probe?: { key: Buffer; everyMs?: number; trialMs?: number; onStuck?: () => void };
  };
}

/**
 * A consumer of the kept chain (ChainConsumer): attached to each chain the
 * supervisor opens, it starts a forwarder over it; when that chain is lost
 * its stream is dropped at once. It never opens a chain itself.
 */
export class TcpTunnel implements ChainConsumer {
  readonly name = 'tcp forwarder';
  readonly host: string;
  private socket: Socket | undefined;
  /** mosh-client's address, from its latest datagram: replies go there. */
  private peer: RemoteInfo | undefined;
  private stream: { channel: ByteChannel; chain: RemoteChain } | undefined;
  private udp: UdpPath | undefined;
  /** How mosh's datagrams travel now (auto starts on udp). */
  private via: 'udp' | 'tcp';
  /** While on tcp: probes were answered and datagrams go both ways until one comes back by UDP. */
  private trial: NodeJS.Timeout | undefined;
  private linger: NodeJS.Timeout | undefined;
  private udpSince = 0;
  private readonly schedule: ProbeSchedule | undefined;
  private stopping = false;
  private retry: NodeJS.Timeout | undefined;
  /** mosh-client's latest datagram: the first thing a new stream carries (see connect()). */
  private latest: Buffer | undefined;
  runtime = '';
  /** How often the stream was brought back, for messages and tests. */
  reconnects = 0;
  /** How often the path changed (udp → tcp or back). */
  changes = 0;

  constructor(private readonly opts: TunnelOptions) {
    this.host = opts.host;
    this.via = opts.udpFirst ? 'udp' : 'tcp';
    const probe = opts.udpFirst?.probe;
    if (probe)
      this.schedule = new ProbeSchedule({
        ...(probe.everyMs !== undefined ? { everyMs: probe.everyMs } : {}),
        probe: () => this.udp?.probe(probe.key),
        ...(probe.onStuck ? { onStuck: probe.onStuck } : {}),
      });
  }

  /** How datagrams travel now. */
  get mode(): 'udp' | 'tcp' {
    return this.via;
  }

  /** On tcp: whether UDP is being probed, and how often (for status and messages). */
  get probing(): { everyMs: number } | undefined {
    return this.via === 'tcp' && this.schedule?.probing ? { everyMs: this.schedule.intervalMs } : undefined;
  }

  /** Probes now and soon after, when on tcp (a relay was started again, say). */
  probeSoon(): void {
    if (this.via === 'tcp' && !this.trial) this.schedule?.soon();
  }

  /**
   * Binds the local port (and, for auto, starts the UDP leg); resolves with
   * the port for mosh-client. The stream starts when the supervisor attaches
   * this consumer to its chain (at once for tcp).
   */
  async start(): Promise<number> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.peer = rinfo;
      // The newest datagram goes first on a new stream (the one in flight when the chain died).
      this.latest = msg;
      if (this.via === 'udp') {
        this.udp?.send(msg);
        return;
      }
      if (this.trial) {
        // mosh-server turns to whichever copy reaches it first: UDP gets a head start, or a
        // stream written at once (in this process, through sshd, which is quick) often wins.
        this.udp?.send(msg);
        setTimeout(() => this.stream?.channel.write(encodeFrame(msg)), HEAD_START_MS);
        return;
      }
      // With no stream (being brought back) the datagram waits as `latest` (only the newest).
      this.stream?.channel.write(encodeFrame(msg));
    });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    const udpFirst = this.opts.udpFirst;
    if (udpFirst) {
      this.udp = new UdpPath({
        ...udpFirst,
        onReply: (d) => {
          const peer = this.peer;
          if (peer) this.socket?.send(d, peer.port, peer.address);
          if (this.trial) this.toUdp();
          // mosh-server answers by UDP, so it has turned to it: the stream can go.
          else if (this.via === 'udp' && this.stream && !this.linger)
            this.linger = setTimeout(() => this.retireStream(), LINGER_MS);
        },
        onSilent: (why) => this.toTcp(why),
        onProbeAnswer: () => this.startTrial(),
      });
    }
    return socket.address().port;
  }

  /** A (new) chain: the forwarder starts over it, unless datagrams go by UDP. */
  async attach(chain: RemoteChain): Promise<void> {
    if (this.via === 'udp' || this.stopping) return;
    await this.connect(chain);
  }

  /** The chain under the stream is gone: a channel on a destroyed connection may never say it closed. */
  detach(chain: RemoteChain): void {
    const stream = this.stream;
    if (stream?.chain !== chain) return;
    this.stream = undefined;
    stream.channel.end();
  }

  async close(): Promise<void> {
    this.stop();
    return Promise.resolve();
  }

  /** Ends the stream (the forwarder exits on EOF) and closes the local port. Safe to call twice. */
  stop(): void {
    this.stopping = true;
    if (this.retry) clearTimeout(this.retry);
    clearTimeout(this.trial);
    clearTimeout(this.linger);
    this.schedule?.stop();
    this.stream?.channel.end();
    this.stream = undefined;
    this.udp?.close();
    this.udp = undefined;
    this.socket?.close();
    this.socket = undefined;
  }

  private async connect(chain: RemoteChain): Promise<void> {
    const stream = await this.opts.open(chain);
    const output = new ForwarderOutput();
    let settle!: (r: ReadyLine | Error) => void;
    const ready = new Promise<ReadyLine | Error>((resolve) => (settle = resolve));
    stream.onData((chunk) => {
      try {
        const step = output.push(chunk);
        if (step.ready) settle(step.ready);
        const peer = this.peer;
        if (peer) for (const d of step.datagrams) this.socket?.send(d, peer.port, peer.address);
      } catch (e) {
        settle(e instanceof Error ? e : new Error(String(e)));
        stream.end();
      }
    });
    void stream.closed.then(() => {
      settle(
        new Error(stream.stderr().trim().split('\n').pop() || 'the forwarder ended before it was ready'),
      );
      if (this.stream?.channel !== stream) return;
      // The forwarder ended on a chain that may still live (its idle timeout, a kill):
      // another over the kept chain; if the chain is dead, the supervisor will say so.
      this.stream = undefined;
      if (!this.stopping && this.via === 'tcp') this.bringBack(0);
    });
    const timer = setTimeout(() => settle(new Error('no answer')), READY_TIMEOUT_MS);
    const r = await ready.finally(() => clearTimeout(timer));
    if (r instanceof Error || 'error' in r) {
      stream.end();
      const why = r instanceof Error ? r.message : r.error;
      throw new EnvError(
        `the datagram forwarder did not start: ${why}`,
        /runtime|install/.test(why)
          ? `install python3 or perl on ${this.opts.host} (perl-base is on every Debian host), or use --transport udp`
          : `run moshctl up with --debug to see the forwarder's command and stderr`,
        { host: this.opts.host, step: 'start forwarder' },
      );
    }
    this.runtime = r.runtime;
    // Back on UDP while it started: not needed now (silence would start another).
    if (this.stopping || this.via === 'udp') {
      stream.end();
      return;
    }
    const old = this.stream;
    this.stream = { channel: stream, chain };
    old?.channel.end();
    // After a roam mosh-client's last datagram went into the dead chain (or was dropped
    // while there was none), and it sends the next only at its 3 s heartbeat: sent again
    // now, it reaches mosh-server from the new forwarder, which moves the server's replies
    // there at once. One it already had is ignored (mosh numbers its datagrams).
    if (this.latest) stream.write(encodeFrame(this.latest));
  }

  /** UDP went silent: the stream carries (the one still there, or a new one), and UDP is probed. */
  private toTcp(why: string): void {
    const udpFirst = this.opts.udpFirst;
    if (!udpFirst || this.stopping) return;
    this.via = 'tcp';
    this.changes++;
    clearTimeout(this.linger);
    this.linger = undefined;
    if (this.schedule) {
      if (this.changes > 1 && Date.now() - this.udpSince < HELD_MS) this.schedule.failed();
      else this.schedule.held();
      this.schedule.start();
    } else {
      // For the rest of the session: without probes there is no telling when UDP passes again.
      this.udp?.close();
      this.udp = undefined;
    }
    udpFirst.onSwitch({ now: 'tcp', why, changes: this.changes });
    if (!this.stream) this.bringBack(0);
  }

  /** A probe was answered: mosh's datagrams go by UDP too, until a reply comes that way (toUdp) or TRIAL_MS pass. */
  private startTrial(): void {
    if (this.via !== 'tcp' || this.trial || this.stopping) return;
    this.schedule?.stop();
    this.trial = setTimeout(() => {
      this.trial = undefined;
      // mosh-server kept answering the stream's copies: UDP is not (yet) the way.
      this.schedule?.failed();
      if (!this.stopping) this.schedule?.start();
    }, this.opts.udpFirst?.probe?.trialMs ?? TRIAL_MS);
  }

  /** A mosh reply came by UDP during a trial: UDP carries from now on, the stream goes soon. */
  private toUdp(): void {
    clearTimeout(this.trial);
    this.trial = undefined;
    if (this.via !== 'tcp' || this.stopping || !this.udp) return;
    this.via = 'udp';
    this.changes++;
    this.udpSince = Date.now();
    this.udp.resume();
    clearTimeout(this.retry);
    this.retry = undefined;
    this.linger = setTimeout(() => this.retireStream(), LINGER_MS);
    this.opts.udpFirst?.onSwitch({
      now: 'udp',
      why: `UDP passes again through ${this.opts.udpFirst.host}`,
      changes: this.changes,
    });
  }

  /** Ends the stream once UDP carries (the forwarder exits on EOF); a new one starts if UDP goes silent. */
  private retireStream(): void {
    this.linger = undefined;
    if (this.via !== 'udp') return;
    const stream = this.stream;
    this.stream = undefined;
    stream?.channel.end();
  }

  /** A stream over the chain the supervisor keeps (waiting for it when it is down). */
  private bringBack(attempt: number): void {
    if (this.via !== 'tcp' || this.stopping) return;
    const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)] ?? 5_000;
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.opts.kept
        .whenUp(this.host, CHAIN_WAIT_MS)
        .then((chain) => this.connect(chain))
        .then(
          () => {
            this.reconnects++;
          },
          (e: unknown) => {
            if (this.stopping || this.stream || this.via !== 'tcp') return;
            if (attempt === 2) this.opts.onTrouble?.(e instanceof Error ? e.message : String(e));
            this.bringBack(attempt + 1);
          },
        );
    }, delay);
  }
}

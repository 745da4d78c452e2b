// moshctl's end of the tcp transport: a UDP port on this machine's loopback
// for mosh-client, and a forwarder on the target fed through the ssh chain
// (src/tcp). Each datagram goes as one frame; replies come back the same way.
// When the stream ends (a roam killed the chain), a new forwarder is started
// over a new chain and the datagrams go on: mosh-client keeps its port and
// sees only a pause, mosh-server sees a new source port (an authenticated roam).
// transport auto: the port first sends on by UDP (UdpPath); the stream only
// starts when UDP goes unanswered, and then carries the rest of the session.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EnvError } from '../errors.js';
import { encodeFrame } from '../tcp/framing.js';
import type { ReadyLine } from '../tcp/launch.js';
import { ForwarderOutput } from '../tcp/output.js';
import type { ByteChannel } from '../transport/types.js';
import { UdpPath, type UdpPathOptions } from './udp-path.js';

const READY_TIMEOUT_MS = 20_000;
/** Between attempts to bring the stream back: soon at first, then every few seconds. */
const RETRY_MS = [0, 1_000, 2_000, 5_000];

export interface TunnelOptions {
  host: string;
  /** Starts a forwarder on the target and returns its stream (over a new chain when the old one died). */
  open: (first: boolean) => Promise<ByteChannel>;
  /** Why the stream could not be brought back (said after mosh-client exits). */
  onTrouble?: (why: string) => void;
  /** transport auto: UDP first; the stream starts when it goes unanswered, and `onSwitch` is told why. */
  udpFirst?: Omit<UdpPathOptions, 'onReply' | 'onSilent'> & { onSwitch: (why: string) => void };
}

export class TcpTunnel {
  private socket: Socket | undefined;
  /** mosh-client's address, from its latest datagram: replies go there. */
  private peer: RemoteInfo | undefined;
  private stream: ByteChannel | undefined;
  private udp: UdpPath | undefined;
  private stopping = false;
  private retry: NodeJS.Timeout | undefined;
  runtime = '';
  /** How often the stream was brought back, for messages and tests. */
  reconnects = 0;

  constructor(private readonly opts: TunnelOptions) {}

  /** How datagrams travel now. */
  get mode(): 'udp' | 'tcp' {
    return this.udp ? 'udp' : 'tcp';
  }

  /** Binds the local port and starts the first forwarder (or the UDP leg); resolves with the port for mosh-client. */
  async start(): Promise<number> {
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.peer = rinfo;
      if (this.udp) this.udp.send(msg);
      // With no stream (being brought back) the datagram is dropped: mosh sends again.
      else this.stream?.write(encodeFrame(msg));
    });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    const udpFirst = this.opts.udpFirst;
    if (!udpFirst) {
      await this.connect(true);
      return socket.address().port;
    }
    this.udp = new UdpPath({
      ...udpFirst,
      onReply: (d) => {
        const peer = this.peer;
        if (peer) this.socket?.send(d, peer.port, peer.address);
      },
      onSilent: (why) => {
        // For the rest of the session: a path that went silent once is not trusted to stay.
        this.udp = undefined;
        udpFirst.onSwitch(why);
        if (!this.stopping) this.bringBack(0);
      },
    });
    return socket.address().port;
  }

  /**
   * The chain under the stream is gone (dropped after a roam): a channel on a
   * destroyed connection may never say it closed, so bring the stream back now.
   */
  streamLost(): void {
    const stream = this.stream;
    if (!stream) return;
    this.stream = undefined;
    stream.end();
    if (!this.stopping) this.bringBack(0);
  }

  /** Ends the stream (the forwarder exits on EOF) and closes the local port. Safe to call twice. */
  stop(): void {
    this.stopping = true;
    if (this.retry) clearTimeout(this.retry);
    this.stream?.end();
    this.stream = undefined;
    this.udp?.close();
    this.udp = undefined;
    this.socket?.close();
    this.socket = undefined;
  }

  private async connect(first: boolean): Promise<void> {
    const stream = await this.opts.open(first);
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
      if (this.stream !== stream) return;
      this.stream = undefined;
      if (!this.stopping) this.bringBack(0);
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
    if (this.stopping) {
      stream.end();
      return;
    }
    this.stream = stream;
  }

  private bringBack(attempt: number): void {
    const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)] ?? 5_000;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.connect(false).then(
        () => {
          this.reconnects++;
        },
        (e: unknown) => {
          if (this.stopping) return;
          if (attempt === 2) this.opts.onTrouble?.(e instanceof Error ? e.message : String(e));
          this.bringBack(attempt + 1);
        },
      );
    }, delay);
  }
}

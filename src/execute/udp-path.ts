// transport auto's UDP leg: datagrams from moshctl's loopback port go on by
// UDP to the first relay (or to mosh-server with no bastion), and replies
// come back, as long as replies come. It only notices silence; TcpTunnel
// decides what happens then (the stream takes over). While the stream
// carries, the leg stands by: it sends the probes that tell when UDP passes
// again (src/relay/probe.ts), and hears their answers.
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { hostPort } from '../host-port.js';
import { answerNonce, probeDatagram, probeNonce } from '../relay/probe.js';

export interface UdpPathOptions {
  address: string;
  port: number;
  /** Host name for messages (the first relay's, or the target's). */
  host: string;
  /** No reply yet: give up this long after the first datagram. */
  switchAfterMs: number;
  /** Replies came before: give up after this long without one while datagrams go out. */
  silenceMs: number;
  onReply: (datagram: Buffer) => void;
  onSilent: (why: string) => void;
  /** A probe sent by `probe()` was answered. */
  onProbeAnswer?: () => void;
}

/** How often silence is checked; the switch comes at most this late. */
const CHECK_MS = 250;
/** An answer to a probe older than this does not count: the path may have changed since. */
const PROBE_ANSWER_MS = 5_000;

export class UdpPath {
  private readonly socket: Socket;
  private readonly timer: NodeJS.Timeout;
  /** When the oldest datagram sent since the last reply went out; undefined when answered. */
  private unansweredSince: number | undefined;
  private answered = false;
  private closed = false;
  /** Carrying mosh's datagrams, so silence counts; false while the stream carries them. */
  private carrying = true;
  /** Nonces of probes not answered yet, with when each went out. */
  private readonly probes = new Map<string, number>();

  constructor(private readonly o: UdpPathOptions) {
    this.socket = createSocket(isIPv6(o.address) ? 'udp6' : 'udp4');
    // Unconnected on purpose: a connected socket keeps its source address,
    // which is gone after a roam; this one sends from whatever address is current.
    this.socket.on('message', (msg, from) => {
      // Only the hop we send to answers; anything else on this port is a stranger.
      if (from.port !== o.port || from.address !== o.address) return;
      const nonce = answerNonce(msg);
      if (nonce !== undefined) {
        const sent = this.probes.get(nonce);
        if (sent === undefined || Date.now() - sent > PROBE_ANSWER_MS) return;
        this.probes.clear();
        o.onProbeAnswer?.();
        return;
      }
      this.unansweredSince = undefined;
      this.answered = true;
      o.onReply(msg);
    });
    // ICMP errors and sends on a vanished address: silence decides, not one error.
    this.socket.on('error', () => undefined);
    this.timer = setInterval(() => this.check(), CHECK_MS);
  }

  send(datagram: Buffer): void {
    if (this.closed) return;
    if (this.carrying) this.unansweredSince ??= Date.now();
    this.socket.send(datagram, this.o.port, this.o.address, () => undefined);
  }

  /** Sends one probe carrying `key`; its answer, if one comes, calls onProbeAnswer. */
  probe(key: Buffer): void {
    if (this.closed) return;
    const d = probeDatagram(key);
    const now = Date.now();
    for (const [n, at] of this.probes) if (now - at > PROBE_ANSWER_MS) this.probes.delete(n);
    this.probes.set(probeNonce(d) ?? '', now);
    this.socket.send(d, this.o.port, this.o.address, () => undefined);
  }

  /** The stream carries now: silence no longer counts (datagrams sent meanwhile are trials). */
  standBy(): void {
    this.carrying = false;
    this.unansweredSince = undefined;
  }

  /** Carries again, after a reply came by UDP: from now on silence counts as after replies. */
  resume(): void {
    this.carrying = true;
    this.answered = true;
    this.unansweredSince = undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.socket.close();
  }

  private check(): void {
    const since = this.unansweredSince;
    if (since === undefined || this.closed || !this.carrying) return;
    const limit = this.answered ? this.o.silenceMs : this.o.switchAfterMs;
    if (Date.now() - since < limit) return;
    const where = `${this.o.host} (${hostPort(this.o.address, this.o.port)})`;
    this.standBy();
    this.o.onSilent(
      this.answered
        ? `no UDP reply from ${where} for ${limit / 1000} s`
        : `no UDP reply from ${where} within ${limit / 1000} s of the first datagram`,
    );
  }
}

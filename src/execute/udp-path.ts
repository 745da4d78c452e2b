// transport auto's UDP leg: datagrams from moshctl's loopback port go on by
// UDP to the first relay (or to mosh-server with no bastion), and replies
// come back, as long as replies come. It only notices silence; TcpTunnel
// decides what happens then (the stream takes over).
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { hostPort } from '../host-port.js';

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
}

/** How often silence is checked; the switch comes at most this late. */
const CHECK_MS = 250;

export class UdpPath {
  private readonly socket: Socket;
  private readonly timer: NodeJS.Timeout;
  /** When the oldest datagram sent since the last reply went out; undefined when answered. */
  private unansweredSince: number | undefined;
  private answered = false;
  private closed = false;

  constructor(private readonly o: UdpPathOptions) {
    this.socket = createSocket(isIPv6(o.address) ? 'udp6' : 'udp4');
    // Unconnected on purpose: a connected socket keeps its source address,
    // which is gone after a roam; this one sends from whatever address is current.
    this.socket.on('message', (msg, from) => {
      // Only the hop we send to answers; anything else on this port is a stranger.
      if (from.port !== o.port || from.address !== o.address) return;
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
    this.unansweredSince ??= Date.now();
    this.socket.send(datagram, this.o.port, this.o.address, () => undefined);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.socket.close();
  }

  private check(): void {
    const since = this.unansweredSince;
    if (since === undefined || this.closed) return;
    const limit = this.answered ? this.o.silenceMs : this.o.switchAfterMs;
    if (Date.now() - since < limit) return;
    const where = `${this.o.host} (${hostPort(this.o.address, this.o.port)})`;
    this.close();
    this.o.onSilent(
      this.answered
        ? `no UDP reply from ${where} for ${limit / 1000} s`
        : `no UDP reply from ${where} within ${limit / 1000} s of the first datagram`,
    );
  }
}

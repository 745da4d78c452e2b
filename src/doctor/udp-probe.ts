// A few datagrams from this machine to an address and port, and whether any
// came back unchanged: the round trip doctor runs through the relays (or the
// tcp forwarder's local port) to the echo on the target.
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { Interrupted } from '../errors.js';

export interface ProbeOptions {
  /** Datagrams sent, `intervalMs` apart. */
  count: number;
  intervalMs: number;
  /** How long to wait for an echo after the first datagram. */
  waitMs: number;
  signal?: AbortSignal;
}

export const PROBE_DEFAULTS: ProbeOptions = { count: 3, intervalMs: 300, waitMs: 2_000 };

export interface ProbeResult {
  sent: number;
  echoed: number;
  /** Milliseconds from sending a datagram to its echo, the fastest; undefined without one. */
  rttMs: number | undefined;
}

/** Sends `count` probes and resolves once all came back or `waitMs` passed; rejects on a local socket error or abort. */
export async function udpRoundTrip(
  address: string,
  port: number,
  opts: ProbeOptions = PROBE_DEFAULTS,
): Promise<ProbeResult> {
  const socket = createSocket(isIPv6(address) ? 'udp6' : 'udp4');
  const sentAt = new Map<string, number>();
  let echoed = 0;
  let rtt: number | undefined;
  let sent = 0;
  const timers: NodeJS.Timeout[] = [];
  let abort = (): void => undefined;
  try {
    return await new Promise<ProbeResult>((resolve, reject) => {
      const done = (): void => resolve({ sent, echoed, rttMs: rtt });
      abort = (): void => {
        const reason: unknown = opts.signal?.reason;
        reject(reason instanceof Error ? reason : new Interrupted('SIGINT'));
      };
      if (opts.signal?.aborted) return abort();
      opts.signal?.addEventListener('abort', abort, { once: true });
      socket.on('error', reject);
      socket.on('message', (msg) => {
        const at = sentAt.get(msg.toString('hex'));
        if (at === undefined) return;
        sentAt.delete(msg.toString('hex'));
        echoed++;
        const ms = performance.now() - at;
        rtt = rtt === undefined ? ms : Math.min(rtt, ms);
        if (echoed === opts.count) done();
      });
      for (let i = 0; i < opts.count; i++) {
        timers.push(
          setTimeout(() => {
            // A marker and random bytes: nothing else on the path answers with exactly these.
            const payload = Buffer.concat([Buffer.from('moshctl-doctor '), randomBytes(16)]);
            sentAt.set(payload.toString('hex'), performance.now());
            sent++;
            socket.send(payload, port, address, (err) => {
              if (err) reject(err);
            });
          }, i * opts.intervalMs),
        );
      }
      timers.push(setTimeout(done, opts.waitMs));
    });
  } finally {
    for (const t of timers) clearTimeout(t);
    opts.signal?.removeEventListener('abort', abort);
    socket.close();
  }
}

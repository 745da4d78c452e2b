// The parts around a TcpTunnel in transport auto's tests, on real loopback
// sockets: a UDP "relay" that echoes (or stays silent) and answers probes
// like the real relay before the target, a "mosh-client" socket, and a
// stream that stands in for the forwarder through the ssh chain (an in-memory
// echo behind framing). Only the stream and the kept chain are fakes; every
// datagram really crosses the loopback.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach } from 'vitest';
import type { KeptChain } from '../../src/execute/kept-chain.js';
import { TcpTunnel, type PathChange } from '../../src/execute/tcp-tunnel.js';
import { PROBE_ANSWER, PROBE_ASK, PROBE_BYTES, PROBE_KEY_BYTES } from '../../src/relay/probe.js';
import { FrameDecoder, encodeFrame } from '../../src/tcp/framing.js';
import type { ByteChannel, RemoteChain } from '../../src/transport/types.js';

const sockets: Socket[] = [];
const tunnels: TcpTunnel[] = [];
const timers: NodeJS.Timeout[] = [];

/** Stops every tunnel and closes every socket after each test. */
export function useTunnelCleanup(): void {
  afterEach(() => {
    for (const t of timers.splice(0)) clearInterval(t);
    for (const t of tunnels.splice(0)) t.stop();
    for (const s of sockets.splice(0)) s.close();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  return s;
}

export interface FakeRelay {
  port: number;
  /** mosh datagrams seen (probes apart). */
  seen: () => number;
  probes: () => number;
  socket: Socket;
}

/**
 * A relay on the loopback: echoes each mosh datagram with a prefix while
 * `answering()`, and answers probes carrying `key` while `probing()`, as the
 * relay before the target does.
 */
export async function relay(
  answering: () => boolean,
  probing: () => boolean = () => false,
  key?: Buffer,
): Promise<FakeRelay> {
  const s = await bound();
  let seen = 0;
  let probes = 0;
  s.on('message', (m, from) => {
    if (m.subarray(0, PROBE_ASK.length).equals(PROBE_ASK)) {
      probes++;
      const keyed =
        key &&
        m.length === PROBE_BYTES &&
        m.subarray(PROBE_ASK.length, PROBE_ASK.length + PROBE_KEY_BYTES).equals(key);
      if (keyed && probing()) s.send(Buffer.concat([PROBE_ANSWER, m.subarray(-8)]), from.port, from.address);
      return;
    }
    seen++;
    if (answering()) s.send(Buffer.concat([Buffer.from('udp:'), m]), from.port, from.address);
  });
  return { port: s.address().port, seen: () => seen, probes: () => probes, socket: s };
}

/** The forwarder's stream: READY, then every frame echoed back with a prefix. */
export function echoStream(): ByteChannel & { frames: () => number } {
  const decoder = new FrameDecoder();
  let deliver: (b: Buffer) => void = () => undefined;
  let closed = false;
  let frames = 0;
  let markClosed!: () => void;
  const closedP = new Promise<void>((r) => (markClosed = r));
  return {
    write(data) {
      for (const d of decoder.push(Buffer.from(data))) {
        frames++;
        setImmediate(() => deliver(encodeFrame(Buffer.concat([Buffer.from('tcp:'), d]))));
      }
    },
    onData(cb) {
      deliver = cb;
      setImmediate(() => cb(Buffer.from('MOSHCTL-FWD READY PID 4242 RUNTIME perl\n')));
    },
    end() {
      closed = true;
      markClosed();
    },
    closed: closedP,
    get isClosed() {
      return closed;
    },
    stderr: () => '',
    frames: () => frames,
  };
}

/** mosh-client: sends `text` every 100 ms from its own port and collects what comes back. */
export async function client(port: number) {
  const s = await bound();
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  let n = 0;
  const timer = setInterval(() => s.send(`ping ${n++}`, port, '127.0.0.1'), 100);
  timers.push(timer);
  return { got, stop: () => clearInterval(timer) };
}

export interface TunnelSetup {
  relayPort: number;
  switchAfterMs?: number;
  silenceMs?: number;
  probe?: { key: Buffer; everyMs?: number; trialMs?: number };
}

export async function tunnel(o: TunnelSetup) {
  const opened: RemoteChain[] = [];
  const streams: ReturnType<typeof echoStream>[] = [];
  const changes: PathChange[] = [];
  // The supervisor's side: the chain is up; the tunnel only ever asks it for the chain.
  const chain = { hostNames: ['gate', 'box'] } as unknown as RemoteChain;
  const kept: KeptChain = { whenUp: () => Promise.resolve(chain), suspect: () => undefined };
  const t = new TcpTunnel({
    host: 'box',
    kept,
    open: (c) => {
      opened.push(c);
      const s = echoStream();
      streams.push(s);
      return Promise.resolve(s);
    },
    udpFirst: {
      address: '127.0.0.1',
      port: o.relayPort,
      host: 'gate',
      switchAfterMs: o.switchAfterMs ?? 600,
      silenceMs: o.silenceMs ?? 1000,
      onSwitch: (c) => changes.push(c),
      ...(o.probe ? { probe: o.probe } : {}),
    },
  });
  tunnels.push(t);
  const port = await t.start();
  // As the supervisor does when the tunnel is added: in UDP mode nothing starts.
  await t.attach(chain);
  return { t, port, opened, streams, changes, switches: () => changes.map((c) => c.why), chain };
}

// transport auto's switch, on real loopback sockets: a UDP "relay" that echoes
// (or stays silent), a "mosh-client" socket, and a stream that stands in for
// the forwarder through the ssh chain (an in-memory echo behind framing). Only
// the stream is a fake; every datagram here really crosses the loopback.
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpTunnel } from '../../src/execute/tcp-tunnel.js';
import { FrameDecoder, encodeFrame } from '../../src/tcp/framing.js';
import type { KeptChain } from '../../src/execute/kept-chain.js';
import type { ByteChannel, RemoteChain } from '../../src/transport/types.js';

const sockets: Socket[] = [];
const tunnels: TcpTunnel[] = [];
afterEach(() => {
  for (const t of tunnels.splice(0)) t.stop();
  for (const s of sockets.splice(0)) s.close();
});

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  return s;
}

/** A relay on the loopback: echoes each datagram with a prefix while `answering()`. */
async function relay(answering: () => boolean): Promise<{ port: number; seen: () => number }> {
  const s = await bound();
  let seen = 0;
  s.on('message', (m, from) => {
    seen++;
    if (answering()) s.send(Buffer.concat([Buffer.from('udp:'), m]), from.port, from.address);
  });
  return { port: s.address().port, seen: () => seen };
}

/** The forwarder's stream: READY, then every frame echoed back with a prefix. */
function echoStream(): ByteChannel {
  const decoder = new FrameDecoder();
  let deliver: (b: Buffer) => void = () => undefined;
  let closed = false;
  let markClosed!: () => void;
  const closedP = new Promise<void>((r) => (markClosed = r));
  return {
    write(data) {
      for (const d of decoder.push(Buffer.from(data)))
        setImmediate(() => deliver(encodeFrame(Buffer.concat([Buffer.from('tcp:'), d]))));
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
  };
}

/** mosh-client: sends `text` every 100 ms from its own port and collects what comes back. */
async function client(port: number) {
  const s = await bound();
  const got: string[] = [];
  s.on('message', (m) => got.push(m.toString()));
  let n = 0;
  const timer = setInterval(() => s.send(`ping ${n++}`, port, '127.0.0.1'), 100);
  return { got, stop: () => clearInterval(timer) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tunnel(relayPort: number, switchAfterMs = 600, silenceMs = 1000) {
  const opened: RemoteChain[] = [];
  const switches: string[] = [];
  // The supervisor's side: the chain is up; the tunnel only ever asks it for the chain.
  const chain = { hostNames: ['gate', 'box'] } as unknown as RemoteChain;
  const kept: KeptChain = { whenUp: () => Promise.resolve(chain), suspect: () => undefined };
  const t = new TcpTunnel({
    host: 'box',
    kept,
    open: (c) => {
      opened.push(c);
      return Promise.resolve(echoStream());
    },
    udpFirst: {
      address: '127.0.0.1',
      port: relayPort,
      host: 'gate',
      switchAfterMs,
      silenceMs,
      onSwitch: (why) => switches.push(why),
    },
  });
  tunnels.push(t);
  const port = await t.start();
  // As the supervisor does when the tunnel is added: in UDP mode nothing starts.
  await t.attach(chain);
  return { t, port, opened, switches, chain };
}

// Generous margins around each limit: the machine is shared and noisy.
describe('TcpTunnel with udpFirst (transport auto)', { timeout: 15_000 }, () => {
  it('stays on UDP while the relay answers: no stream is ever opened', async () => {
    const r = await relay(() => true);
    const { t, port, opened, switches } = await tunnel(r.port);
    expect(t.mode).toBe('udp');
    const c = await client(port);
    await sleep(1500);
    c.stop();
    expect(r.seen()).toBeGreaterThan(5);
    expect(c.got.length).toBeGreaterThan(5);
    expect(c.got.every((g) => g.startsWith('udp:ping'))).toBe(true);
    expect(opened).toEqual([]);
    expect(switches).toEqual([]);
    expect(t.mode).toBe('udp');
  });

  it('switches to the stream when no UDP reply comes within switchAfterMs, and the client goes on', async () => {
    const r = await relay(() => false);
    const { t, port, opened, switches, chain } = await tunnel(r.port);
    const c = await client(port);
    await sleep(1600);
    c.stop();
    expect(r.seen()).toBeGreaterThan(0); // it did try UDP
    expect(switches).toEqual([
      `no UDP reply from gate (127.0.0.1:${r.port}) within 0.6 s of the first datagram`,
    ]);
    expect(opened).toEqual([chain]); // over the chain the supervisor keeps: the tunnel opens none
    expect(t.mode).toBe('tcp');
    expect(c.got.length).toBeGreaterThan(3);
    expect(c.got.every((g) => g.startsWith('tcp:ping'))).toBe(true);
  });

  it('switches when replies stop for silenceMs after they came (UDP blocked mid-session)', async () => {
    let answering = true;
    const r = await relay(() => answering);
    const { t, port, switches } = await tunnel(r.port, 600, 2000);
    const c = await client(port);
    await sleep(800);
    answering = false;
    const before = c.got.length;
    // Longer than switchAfterMs, shorter than silenceMs: still UDP.
    await sleep(800);
    expect(t.mode).toBe('udp');
    await sleep(2200);
    c.stop();
    expect(before).toBeGreaterThan(3);
    expect(switches).toEqual([`no UDP reply from gate (127.0.0.1:${r.port}) for 2 s`]);
    expect(t.mode).toBe('tcp');
    expect(c.got.at(-1)).toMatch(/^tcp:ping/);
  });

  it('ignores datagrams from anyone but the relay it sends to', async () => {
    const r = await relay(() => false);
    const { port, switches } = await tunnel(r.port, 800);
    const c = await client(port);
    const stranger = await bound();
    // Find the tunnel's sending port the way a spoofer on this host could: it is what the relay sees.
    const seenFrom = await new Promise<number>((resolve) => {
      const probe = sockets.find((s) => s.address().port === r.port);
      probe?.once('message', (_m, from) => resolve(from.port));
    });
    const spam = setInterval(() => stranger.send('forged', seenFrom, '127.0.0.1'), 50);
    await sleep(1200);
    clearInterval(spam);
    c.stop();
    expect(c.got.filter((g) => g === 'forged')).toEqual([]);
    expect(switches).toHaveLength(1); // forged replies did not count as UDP working
  });
});

// transport auto's switch to tcp, on real loopback sockets (test/unit/tunnel-fakes.ts):
// a UDP "relay" that echoes (or stays silent), a "mosh-client" socket, and a
// stream that stands in for the forwarder through the ssh chain. Coming back
// to UDP: tcp-tunnel-return.test.ts.
import { describe, expect, it } from 'vitest';
import { bound, client, relay, sleep, tunnel, useTunnelCleanup } from './tunnel-fakes.js';

useTunnelCleanup();

// Generous margins around each limit: the machine is shared and noisy.
describe('TcpTunnel with udpFirst (transport auto)', { timeout: 15_000 }, () => {
  it('stays on UDP while the relay answers: no stream is ever opened', async () => {
    const r = await relay(() => true);
    const { t, port, opened, switches } = await tunnel({ relayPort: r.port });
    expect(t.mode).toBe('udp');
    const c = await client(port);
    await sleep(1500);
    c.stop();
    expect(r.seen()).toBeGreaterThan(5);
    expect(c.got.length).toBeGreaterThan(5);
    expect(c.got.every((g) => g.startsWith('udp:ping'))).toBe(true);
    expect(opened).toEqual([]);
    expect(switches()).toEqual([]);
    expect(t.mode).toBe('udp');
  });

  it('switches to the stream when no UDP reply comes within switchAfterMs, and the client goes on; with no relay that answers probes, for good', async () => {
    const r = await relay(() => false);
    const { t, port, opened, switches, chain } = await tunnel({ relayPort: r.port });
    const c = await client(port);
    await sleep(1600);
    expect(r.probes()).toBe(0);
    expect(t.probing).toBeUndefined();
    c.stop();
    expect(r.seen()).toBeGreaterThan(0); // it did try UDP
    expect(switches()).toEqual([
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
    const { t, port, switches } = await tunnel({ relayPort: r.port, silenceMs: 2000 });
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
    expect(switches()).toEqual([`no UDP reply from gate (127.0.0.1:${r.port}) for 2 s`]);
    expect(t.mode).toBe('tcp');
    expect(c.got.at(-1)).toMatch(/^tcp:ping/);
  });

  it('ignores datagrams from anyone but the relay it sends to', async () => {
    const r = await relay(() => false);
    const { port, switches } = await tunnel({ relayPort: r.port, switchAfterMs: 800 });
    const c = await client(port);
    const stranger = await bound();
    // Find the tunnel's sending port the way a spoofer on this host could: it is what the relay sees.
    const seenFrom = await new Promise<number>((resolve) => {
      r.socket.once('message', (_m, from) => resolve(from.port));
    });
    const spam = setInterval(() => stranger.send('forged', seenFrom, '127.0.0.1'), 50);
    await sleep(1200);
    clearInterval(spam);
    c.stop();
    expect(c.got.filter((g) => g === 'forged')).toEqual([]);
    expect(switches()).toHaveLength(1); // forged replies did not count as UDP working
  });
});

// transport auto coming back to UDP, on real loopback sockets (test/unit/tunnel-fakes.ts):
// on tcp the tunnel probes the relay; an answered probe starts a trial (each
// datagram both ways); the first mosh reply by UDP moves the session back and
// the stream ends; a trial without one changes nothing for the session; and
// silence moves it to tcp again. ProbeSchedule's timing with fake timers.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProbeSchedule } from '../../src/execute/udp-return.js';
import { PROBE_ANSWER, PROBE_BYTES } from '../../src/relay/probe.js';
import { bound, client, relay, sleep, tunnel, useTunnelCleanup } from './tunnel-fakes.js';

useTunnelCleanup();

async function until(cond: () => boolean, ms: number): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await sleep(20);
  }
  return Date.now() - start;
}

/** A tunnel on tcp (its relay silent at first), probing every 300 ms, with a 2 s trial. */
async function onTcp(trialMs = 2000) {
  const key = randomBytes(16);
  const gate = { answering: false, probing: false };
  const r = await relay(
    () => gate.answering,
    () => gate.probing,
    key,
  );
  const setup = await tunnel({ relayPort: r.port, probe: { key, everyMs: 300, trialMs } });
  const c = await client(setup.port);
  await until(() => setup.t.mode === 'tcp', 3000);
  return { ...setup, r, c, gate, key };
}

// Generous margins around each limit: the machine is shared and noisy.
describe('TcpTunnel on tcp with probes (transport auto comes back)', { timeout: 20_000 }, () => {
  it('comes back to UDP once probes are answered, without a gap, and ends the stream', async () => {
    const { t, r, c, gate, changes, streams, opened } = await onTcp();
    await sleep(500);
    expect(r.probes()).toBeGreaterThan(0); // probing while UDP is dropped
    const before = c.got.length;
    gate.answering = gate.probing = true;
    const took = await until(() => t.mode === 'udp', 3000);
    expect(took).toBeLessThan(300 + 1000); // one probe interval, and the first reply of the trial
    expect(changes.map((x) => [x.now, x.changes])).toEqual([
      ['tcp', 1],
      ['udp', 2],
    ]);
    expect(changes[1]?.why).toBe('UDP passes again through gate');
    // The stream lingers a moment for the server's last datagrams that way, then ends.
    await until(() => streams[0]?.isClosed === true, 4000);
    const frames = streams[0]?.frames() ?? 0;
    await sleep(500);
    c.stop();
    expect(streams[0]?.frames()).toBe(frames);
    expect(opened).toHaveLength(1);
    expect(c.got.at(-1)).toMatch(/^udp:ping/);
    // Replies all along: nothing lost in the switch (one every 100 ms, some of them twice in the trial).
    expect(c.got.length - before).toBeGreaterThan(((took + 1000) / 100) * 0.7);
    expect(t.probing).toBeUndefined();
  });

  it('a trial that gets no mosh reply by UDP changes nothing, and then probes come less often', async () => {
    const { t, r, c, gate, changes } = await onTcp(500);
    gate.probing = true; // the relay answers probes, but mosh-server never answers that way
    const seen = r.seen();
    // After the first failed trial, probes go out half as often.
    await until(() => (t.probing?.everyMs ?? 0) > 300, 3000);
    expect(r.seen()).toBeGreaterThan(seen); // the trial sent mosh's datagrams by UDP too
    expect(t.mode).toBe('tcp');
    // Three failed trials in a row: no probes until this machine's addresses change.
    await until(() => t.probing === undefined, 10_000);
    const probes = r.probes();
    const replies = c.got.length;
    await sleep(1000);
    c.stop();
    expect(r.probes()).toBe(probes);
    expect(c.got.length - replies).toBeGreaterThan(5); // the session went on by tcp all along
    expect(c.got.every((g) => g.startsWith('tcp:'))).toBe(true);
    expect(changes).toHaveLength(1);
  });

  it('goes back to tcp when UDP falls silent again; a short stay makes probes rarer', async () => {
    const { t, c, gate, changes, streams } = await onTcp();
    gate.answering = gate.probing = true;
    await until(() => t.mode === 'udp', 3000);
    await until(() => streams[0]?.isClosed === true, 4000);
    gate.answering = gate.probing = false;
    await until(() => t.mode === 'tcp', 3000); // silenceMs 1 s
    expect(changes.map((x) => x.now)).toEqual(['tcp', 'udp', 'tcp']);
    expect(changes[2]?.why).toMatch(/^no UDP reply from gate \(127\.0\.0\.1:\d+\) for 1 s$/);
    // A new stream: the old one ended once UDP carried.
    await until(() => streams.length === 2, 2000);
    const replies = c.got.length;
    await sleep(600);
    c.stop();
    expect(c.got.slice(replies).every((g) => g.startsWith('tcp:'))).toBe(true);
    expect(c.got.length).toBeGreaterThan(replies);
    expect(t.probing?.everyMs).toBe(600);
  });

  it("ignores a probe's answer from anyone but the relay, even with the right nonce", async () => {
    const { t, r, changes } = await onTcp();
    const stranger = await bound();
    // Someone who sees the probes (and where they come from) answers them first, from elsewhere.
    r.socket.on('message', (m, from) => {
      if (m.length === PROBE_BYTES)
        stranger.send(Buffer.concat([PROBE_ANSWER, m.subarray(-8)]), from.port, '127.0.0.1');
    });
    await sleep(1500);
    expect(r.probes()).toBeGreaterThan(2);
    expect(t.mode).toBe('tcp');
    expect(changes).toHaveLength(1);
  });
});

describe('ProbeSchedule', () => {
  afterEach(() => vi.useRealTimers());

  it('probes every interval, doubles it after each failed return, stops after three until a change; asks for the relays after a minute', () => {
    vi.useFakeTimers();
    let probes = 0;
    let stuck = 0;
    const s = new ProbeSchedule({ everyMs: 1000, probe: () => probes++, onStuck: () => stuck++ });
    s.start();
    vi.advanceTimersByTime(3000);
    expect(probes).toBe(3);
    s.stop();
    vi.advanceTimersByTime(5000);
    expect(probes).toBe(3);
    s.failed();
    s.start();
    expect(s.intervalMs).toBe(2000);
    vi.advanceTimersByTime(4000);
    expect(probes).toBe(5);
    s.soon(); // at once, and twice within 1.5 s
    vi.advanceTimersByTime(1500);
    expect(probes).toBe(8);
    s.failed();
    s.failed();
    s.start();
    expect(s.probing).toBe(false);
    vi.advanceTimersByTime(120_000);
    expect(probes).toBe(8);
    s.held();
    s.start();
    expect([s.probing, s.intervalMs]).toEqual([true, 1000]);
    vi.advanceTimersByTime(61_000);
    expect(stuck).toBe(1);
    s.stop();
  });
});

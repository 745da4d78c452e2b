// transport auto's probes, in both relay runtimes for real (test/support/relay-harness.ts):
// the relay before the target answers a probe carrying its key itself and never
// forwards it; a probe without the key gets nothing; relays without a key pass
// probes on, so the one before the target answers through them; answers are
// capped per second; and a PING or a keyed probe keeps a relay alive that no
// reply from its next hop does (a session on tcp sends nothing through it).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PING, parseExit, parseOk, parseProbeKeyOk, probeKeyLine, toLine } from '../../src/relay/control.js';
import {
  ANSWER_BYTES,
  PROBE_ANSWERS_PER_SECOND,
  answerNonce,
  probeDatagram,
  probeNonce,
} from '../../src/relay/probe.js';
import { installRuntime, runtimeVariants } from '../support/interpreters.js';
import {
  echoServer,
  isDead,
  sleep,
  start,
  status,
  udp,
  useInterpreterPath,
  useRelayCleanup,
  waitFor,
  type Udp,
} from '../support/relay-harness.js';

useRelayCleanup();

/** A client socket that keeps every datagram it gets as bytes. */
async function client(): Promise<Udp & { raw: Buffer[] }> {
  const s = Object.assign(await udp(), { raw: [] as Buffer[] });
  s.on('message', (m) => s.raw.push(m));
  return s;
}

const answers = (c: { raw: Buffer[] }) => c.raw.map(answerNonce).filter((n) => n !== undefined);

describe.each(runtimeVariants)('relay probes in $label', { timeout: 20_000 }, (variant) => {
  const { runtime } = variant;
  const bin = mkdtempSync(join(tmpdir(), 'moshctl-probes-'));
  beforeAll(() => {
    installRuntime(bin, variant);
    useInterpreterPath(bin);
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  it('answers a probe with its key, itself, with the nonce and fewer bytes; never forwards one', async () => {
    const echo = await echoServer();
    const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
    const key = randomBytes(16);
    expect(parseProbeKeyOk(await r.ask(probeKeyLine(key)))).toBe(true);
    const c = await client();
    const probe = probeDatagram(key);
    c.send(probe, r.port, '127.0.0.1');
    expect(await waitFor(() => c.raw.length === 1, 2000)).toBe(true);
    expect(c.raw[0]).toHaveLength(ANSWER_BYTES);
    expect(answers(c)).toEqual([probeNonce(probe)]);
    // The wrong key, a cut probe, a probe with bytes after it: nothing back, nothing forwarded.
    c.send(probeDatagram(randomBytes(16)), r.port, '127.0.0.1');
    c.send(probe.subarray(0, probe.length - 1), r.port, '127.0.0.1');
    c.send(Buffer.concat([probe, Buffer.from('x')]), r.port, '127.0.0.1');
    // mosh's own datagrams still pass, both ways.
    c.send('mosh datagram', r.port, '127.0.0.1');
    expect(await waitFor(() => c.raw.length === 2, 2000)).toBe(true);
    await sleep(200);
    expect(c.raw.map((b) => b.toString('latin1')).slice(1)).toEqual(['mosh datagram']);
    expect(echo.seen()).toBe(1);
    expect(await status(r)).toMatchObject({ in: 5, clients: 1, dropped: 0 });
  });

  it('without a key passes probes on like any datagram; refuses a bad key', async () => {
    const echo = await echoServer();
    const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
    expect(parseProbeKeyOk(await r.ask('PROBEKEY 00ff\n'))).toEqual({
      error: 'usage: PROBEKEY <32 hex digits>',
    });
    expect(parseProbeKeyOk(await r.ask(`PROBEKEY ${'AB'.repeat(16)}\n`))).toEqual({
      error: 'usage: PROBEKEY <32 hex digits>',
    });
    const c = await client();
    const probe = probeDatagram(randomBytes(16));
    c.send(probe, r.port, '127.0.0.1');
    // The echo sends it back: it went through, not answered by the relay.
    expect(await waitFor(() => c.raw.length === 1, 2000)).toBe(true);
    expect(c.raw[0]).toEqual(probe);
    expect(echo.seen()).toBe(1);
  });

  it('answers through a relay before it that has no key: the answer proves both', async () => {
    const echo = await echoServer();
    const key = randomBytes(16);
    const last = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
    expect(parseProbeKeyOk(await last.ask(probeKeyLine(key)))).toBe(true);
    const first = await start(runtime, {});
    expect(parseOk(await first.ask(toLine('127.0.0.1', last.port)))).toMatchObject({ port: last.port });
    const c = await client();
    const probe = probeDatagram(key);
    c.send(probe, first.port, '127.0.0.1');
    expect(await waitFor(() => c.raw.length === 1, 2000)).toBe(true);
    expect(answers(c)).toEqual([probeNonce(probe)]);
    expect(echo.seen()).toBe(0);
  });

  it(`answers at most ${PROBE_ANSWERS_PER_SECOND} probes a second, whoever asks`, async () => {
    const r = await start(runtime, {});
    const key = randomBytes(16);
    expect(parseProbeKeyOk(await r.ask(probeKeyLine(key)))).toBe(true);
    const c = await client();
    for (let i = 0; i < 40; i++) c.send(probeDatagram(key), r.port, '127.0.0.1');
    await sleep(500);
    expect(answers(c).length).toBeGreaterThan(0);
    expect(answers(c).length).toBeLessThanOrEqual(2 * PROBE_ANSWERS_PER_SECOND); // a second's edge may fall inside
  });

  it(
    'stays alive past its first-contact time while PINGs or keyed probes come, and exits when they stop',
    { timeout: 20_000 },
    async () => {
      const echo = await echoServer('udp4', true); // never answers: no reply from the next hop
      const key = randomBytes(16);
      const pinged = await start(runtime, {
        idleTimeout: 600,
        firstContact: 2,
        to: { address: '127.0.0.1', port: echo.port },
      });
      const probed = await start(runtime, {
        idleTimeout: 600,
        firstContact: 2,
        to: { address: '127.0.0.1', port: echo.port },
      });
      expect(parseProbeKeyOk(await probed.ask(probeKeyLine(key)))).toBe(true);
      const c = await client();
      const stranger = await client();
      const timer = setInterval(() => {
        pinged.child.stdin.write(PING);
        c.send(probeDatagram(key), probed.port, '127.0.0.1');
      }, 500);
      await sleep(3500); // past the 2 s of first contact
      clearInterval(timer);
      expect([isDead(pinged.pid), isDead(probed.pid)]).toEqual([false, false]);
      // A stranger's probes (no key) are no sign of life.
      const spoof = setInterval(
        () => stranger.send(probeDatagram(randomBytes(16)), probed.port, '127.0.0.1'),
        200,
      );
      const stopped = Date.now();
      try {
        expect(await Promise.all([pinged.code, probed.code])).toEqual([0, 0]);
      } finally {
        clearInterval(spoof);
      }
      expect(Date.now() - stopped).toBeLessThan(3500);
      expect(probed.lines.map(parseExit)).toContain('idle');
      expect(stranger.raw).toEqual([]);
    },
  );
});

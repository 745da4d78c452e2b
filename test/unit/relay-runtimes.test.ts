// relay v2 for real, in both runtimes, each started exactly as a hop would start it:
// launch.ts's command through /bin/sh -c, its stdin, then control lines. Loopback
// only (127.0.0.1 and ::1), with a local UDP echo server as the next hop
// (test/support/relay-harness.ts). transport auto's probes: relay-probes.test.ts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PING, QUIT, STATUS, parseExit, parseOk, parseSimple, toLine } from '../../src/relay/control.js';
import { LAUNCH_SH, relayLaunch } from '../../src/relay/launch.js';
import { SH, shellJoin, shellQuote } from '../../src/remote/shell.js';
import { installRuntime, runtimeVariants } from '../support/interpreters.js';
import {
  TOKEN,
  base,
  echoServer,
  isDead,
  programs,
  send,
  sleep,
  sockets,
  spawnRelay,
  start,
  status,
  udp,
  useInterpreterPath,
  useRelayCleanup,
  waitFor,
} from '../support/relay-harness.js';

useRelayCleanup();

// Real interpreters on a loaded CI machine: a start can take seconds.
describe.each(runtimeVariants)('relay v2 in $label', { timeout: 20_000 }, (variant) => {
  const { runtime } = variant;
  const bin = mkdtempSync(join(tmpdir(), 'moshctl-runtimes-'));
  beforeAll(() => {
    installRuntime(bin, variant);
    useInterpreterPath(bin);
  });
  afterAll(() => rmSync(bin, { recursive: true, force: true }));

  it('says where it listens, as which process, and answers PING, STATUS and QUIT', async () => {
    const r = await start(runtime);
    expect(r.port).toBe(base); // the first port of its range was free
    expect(r.pid).not.toBe(r.child.pid); // the relay, not the sh that started it
    expect(readFileSync(`/proc/${r.pid}/cmdline`, 'utf8')).toContain(runtime);
    const stat = readFileSync(`/proc/${r.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    expect(Number(stat[2])).toBe(r.pid); // its own process group: kill -TERM -PID reaches it
    expect(parseSimple(await r.ask(PING))).toBe('PONG');
    expect(await status(r)).toEqual({
      clients: 0,
      proven: 0,
      in: 0,
      out: 0,
      dropped: 0,
      lastReply: undefined,
      target: undefined,
    });
    expect(parseSimple(await r.ask(QUIT))).toBe('BYE');
    expect(await r.code).toBe(0);
    expect(isDead(r.pid)).toBe(true);
  });

  it('drops datagrams until TO, then relays them; a new TO replaces the next hop', async () => {
    const echo = await echoServer();
    const r = await start(runtime);
    const c = await udp();
    for (let i = 0; i < 3; i++) send(c, r.port, `early ${i}`);
    await sleep(200);
    expect(await status(r)).toMatchObject({ in: 3, dropped: 3, clients: 0 });
    expect(parseOk(await r.ask(toLine('127.0.0.1', echo.port)))).toEqual({
      ip: '127.0.0.1',
      port: echo.port,
    });
    send(c, r.port, 'hello');
    expect(await waitFor(() => c.got.includes('hello'), 2000)).toBe(true);
    const s = await status(r);
    expect(s).toEqual({
      clients: 1,
      proven: 1,
      in: 4,
      out: 1,
      dropped: 3,
      lastReply: 0,
      target: { ip: '127.0.0.1', port: echo.port },
    });

    const echo2 = await echoServer();
    expect(parseOk(await r.ask(toLine('localhost', echo2.port)))).toMatchObject({ port: echo2.port });
    expect(await status(r)).toMatchObject({ clients: 0, proven: 0 }); // connected to the old hop: dropped
    send(c, r.port, 'again');
    expect(await waitFor(() => c.got.includes('again'), 2000)).toBe(true);
    expect(echo2.from).toHaveLength(1);
    expect(parseOk(await r.ask('TO nowhere.invalid 9\n'))).toEqual({
      error: 'cannot resolve nowhere.invalid',
    });
    expect(parseOk(await r.ask('TO 127.0.0.1 65536\n'))).toEqual({ error: 'bad port' });
    expect(parseOk(await r.ask('TO $(id) 9\n'))).toEqual({ error: 'bad host' });
  });

  it('answers junk control lines with ERR and goes on relaying', async () => {
    const echo = await echoServer();
    const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
    for (const junk of [
      'FOO\n',
      `${'x'.repeat(600)}\n`,
      Buffer.from([0, 0xff, 0x1b, 0x0a]),
      '\n',
      'ping\n',
      'TO\n',
    ])
      expect(await r.ask(junk)).toMatch(/^ERR /);
    r.child.stdin.write('y'.repeat(3000)); // overlong, arriving in pieces: one ERR
    await sleep(100);
    expect(await r.ask('yyy\r\n')).toBe('ERR line too long');
    expect(await r.ask(PING)).toBe('PONG');
    const c = await udp();
    send(c, r.port, 'still here');
    expect(await waitFor(() => c.got.includes('still here'), 2000)).toBe(true);
  });

  it('gives each client address its own upstream socket, so the server sees a roam', async () => {
    const echo = await echoServer();
    const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
    const a = await udp();
    const b = await udp();
    send(a, r.port, 'from a');
    expect(await waitFor(() => a.got.length === 1, 2000)).toBe(true);
    send(b, r.port, 'from b');
    expect(await waitFor(() => b.got.length === 1, 2000)).toBe(true);
    expect([a.got, b.got]).toEqual([['from a'], ['from b']]);
    expect(new Set(echo.from).size).toBe(2);
    expect(await status(r)).toMatchObject({ clients: 2, proven: 2 });
  });

  it('keeps the proven client when 50 unproven source ports flood past --max-clients 4', async () => {
    const echo = await echoServer('udp4', true);
    const r = await start(runtime, { maxClients: 4, to: { address: '127.0.0.1', port: echo.port } });
    const real = await udp();
    send(real, r.port, `${TOKEN}before`);
    expect(await waitFor(() => real.got.length === 1, 2000)).toBe(true);
    for (let i = 0; i < 50; i++) send(await udp(), r.port, 'forged');
    expect(await waitFor(() => echo.seen() >= 51, 3000)).toBe(true);
    send(real, r.port, `${TOKEN}after`);
    expect(await waitFor(() => real.got.length === 2, 2000)).toBe(true);
    expect(echo.from).toEqual([echo.from[0], echo.from[0]]); // the same upstream socket: never evicted
    expect(await status(r)).toMatchObject({ clients: 4, proven: 1, in: 52 });
  });

  it('relays on after stdout and stdin close, ignores SIGHUP, and stops on SIGTERM to its group', async () => {
    const echo = await echoServer();
    const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
    r.child.stdout.destroy(); // nobody reads replies any more: writing one gets EPIPE
    r.child.stdin.write(PING + STATUS);
    await sleep(200);
    expect(isDead(r.pid)).toBe(false);
    r.child.stdin.end(); // the ssh channel dropped
    process.kill(r.pid, 'SIGHUP');
    await sleep(300);
    expect(isDead(r.pid)).toBe(false);
    const c = await udp();
    send(c, r.port, 'after eof');
    expect(await waitFor(() => c.got.includes('after eof'), 2000)).toBe(true);
    process.kill(-r.pid, 'SIGTERM');
    expect(await waitFor(() => isDead(r.pid), 2000)).toBe(true);
  });

  it('exits on EOF when it was never told where to forward (its setup failed), but not once wired', async () => {
    const unwired = await start(runtime, {});
    unwired.child.stdin.end();
    expect(await waitFor(() => isDead(unwired.pid), 3000)).toBe(true);
    const echo = await echoServer();
    const wired = await start(runtime, {});
    wired.child.stdin.write(`TO 127.0.0.1 ${echo.port}\n`);
    await sleep(200);
    wired.child.stdin.end();
    await sleep(300);
    expect(isDead(wired.pid)).toBe(false);
    process.kill(-wired.pid, 'SIGTERM');
    expect(await waitFor(() => isDead(wired.pid), 2000)).toBe(true);
  });

  it('drops what it cannot take when out of file descriptors (EMFILE), and goes on', async () => {
    const echo = await echoServer('udp4', true);
    const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } }, 'ulimit -n 16; ');
    const real = await udp();
    send(real, r.port, `${TOKEN}first`);
    expect(await waitFor(() => real.got.length === 1, 2000)).toBe(true);
    for (let i = 0; i < 30; i++) send(await udp(), r.port, 'forged');
    await sleep(300);
    const s = await status(r);
    expect(s.in).toBe(31);
    expect(s.dropped).toBeGreaterThan(10); // no socket to be had for those
    expect(s.clients).toBeLessThan(16);
    send(real, r.port, `${TOKEN}second`);
    expect(await waitFor(() => real.got.length === 2, 2000)).toBe(true);
    expect(await r.ask(PING)).toBe('PONG');
  });

  it('exits at once on SIGINT', async () => {
    const r = await start(runtime);
    process.kill(r.pid, 'SIGINT');
    expect(await waitFor(() => isDead(r.pid), 1000)).toBe(true);
  });

  it(
    'exits after --idle-timeout without replies, however much clients send',
    { timeout: 15000 },
    async () => {
      const echo = await echoServer('udp4', true);
      const r = await start(runtime, { idleTimeout: 2, to: { address: '127.0.0.1', port: echo.port } });
      const c = await udp();
      const timer = setInterval(() => send(c, r.port, `${TOKEN}keepalive`), 200);
      await sleep(3000); // replies keep it alive past the idle timeout
      expect(isDead(r.pid)).toBe(false);
      clearInterval(timer);
      const spoofer = setInterval(() => send(c, r.port, 'forged'), 100); // no replies: no life
      const stopped = Date.now();
      try {
        expect(await r.code).toBe(0);
      } finally {
        clearInterval(spoofer);
      }
      expect(Date.now() - stopped).toBeGreaterThan(1500);
      expect(Date.now() - stopped).toBeLessThan(3500);
      expect(r.lines.map(parseExit)).toContain('idle');
    },
  );

  it('gives the next hop --first-contact seconds to answer at all', { timeout: 15000 }, async () => {
    const echo = await echoServer('udp4', true);
    const started = Date.now();
    const r = await start(runtime, {
      idleTimeout: 600,
      firstContact: 2,
      to: { address: '127.0.0.1', port: echo.port },
    });
    expect(await r.code).toBe(0);
    expect(Date.now() - started).toBeGreaterThan(1500);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it(
    'exits 4 soon after the next hop starts refusing (ICMP port unreachable)',
    { timeout: 15000 },
    async () => {
      const gone = await udp();
      const port = gone.address().port;
      gone.close(); // nothing listens there now
      sockets.splice(sockets.indexOf(gone), 1);
      const r = await start(runtime, { idleTimeout: 30, refusedExit: 2, to: { address: '127.0.0.1', port } });
      const c = await udp();
      const timer = setInterval(() => send(c, r.port, 'anyone?'), 100);
      const started = Date.now();
      try {
        expect(await r.code).toBe(4);
      } finally {
        clearInterval(timer);
      }
      expect(Date.now() - started).toBeLessThan(5000);
      expect(r.lines.map(parseExit)).toContain('refused');
    },
  );

  it('serves IPv4 and IPv6 clients on one dual-stack port, and an IPv6 next hop', async () => {
    const echo = await echoServer('udp6');
    const r = await start(runtime, { to: { address: '::1', port: echo.port } });
    const v4 = await udp('udp4');
    const v6 = await udp('udp6');
    send(v4, r.port, 'v4');
    send(v6, r.port, 'v6');
    expect(await waitFor(() => v4.got.length === 1 && v6.got.length === 1, 2000)).toBe(true);
    expect(await status(r)).toMatchObject({ clients: 2, proven: 2, target: { ip: '::1', port: echo.port } });
  });

  it('exits 3 when no port in the range is free, and 2 on bad arguments', async () => {
    const blocker = await udp();
    const port = blocker.address().port;
    const l = relayLaunch({ runtime, listen: { from: port, to: port }, idleTimeout: 5 }, programs);
    const taken = spawnRelay(l.command, l.stdin);
    expect(await taken.code).toBe(3);
    expect(taken.lines).toEqual([`MOSHCTL-RELAY ERROR no free UDP port in ${port}-${port}`]);
    // launch.ts refuses bad values itself, so hand the relay some directly, as launch would pass them.
    const [p, n] = runtime === 'python3' ? [programs.python3.length, 0] : [0, programs.perl.length];
    for (const [args, why] of [
      [['--ports', '9-1', '--idle-timeout', '5'], '--ports must be FROM-TO'],
      [['--ports', '50000', '--idle-timeout', '0'], '--idle-timeout must be 1-604800 seconds'],
      [['--ports', '50000', '--idle-timeout', '5', '--bogus', '1'], "unknown argument '--bogus'"],
      [['--ports', '50000', '--idle-timeout', '5', '--to', 'a;b:1'], '--to: bad host'],
      [['--ports', '50000'], 'missing --idle-timeout'],
    ] as const) {
      const bad = spawnRelay(
        `${SH} -c ${shellQuote(LAUNCH_SH)} moshctl-relay ${shellJoin([runtime, p, n, ...args])}`,
        l.stdin,
      );
      expect(await bad.code).toBe(2);
      expect(bad.lines).toEqual([expect.stringContaining(`MOSHCTL-RELAY ERROR ${why}`)]);
    }
  });

  it(
    'costs (printed, not asserted): 1300-byte ping-pong through the relay vs direct',
    { timeout: 30000 },
    async () => {
      const echo = await echoServer();
      const r = await start(runtime, { to: { address: '127.0.0.1', port: echo.port } });
      const direct = await pingPong(echo.port, 3000);
      const relayed = await pingPong(r.port, 3000);
      const cpu0 = cpuSeconds(r.pid);
      const rate = await throughput(r.port, 1000);
      // Wall-clock latency swings with CPU wake-ups; the relay's own CPU time per datagram does not.
      const cpu = ((cpuSeconds(r.pid) - cpu0) / (2 * rate)) * 1e6;
      const line = (name: string, s: { p50: number; p99: number; perSec: number }) =>
        `${name}: rtt p50 ${s.p50} µs, p99 ${s.p99} µs, ${s.perSec} round trips/s`;
      console.log(
        [
          `relay v2 ${runtime} (${variant.path}), loopback`,
          line('  direct ', direct),
          line('  relayed', relayed),
          `  relayed, 32 in flight: ${rate} datagrams/s each way, relay CPU ~${cpu.toFixed(1)} µs per datagram`,
        ].join('\n'),
      );
      expect(relayed.p50).toBeGreaterThan(0);
    },
  );
});

/** utime + stime of a process, from /proc (clock ticks of 10 ms on Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Sequential round trips of 1300 bytes; latency percentiles in µs. */
async function pingPong(port: number, n: number) {
  const c = await udp();
  const payload = Buffer.alloc(1300, 7);
  const rtts: number[] = [];
  const started = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      const finish = (answered: boolean) => {
        if (answered) rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
        clearTimeout(lost);
        c.off('message', done);
        resolve();
      };
      const done = () => finish(true);
      const lost = setTimeout(() => finish(false), 200); // counted out of the percentiles
      c.on('message', done);
      send(c, port, payload);
    });
  }
  const total = Number(process.hrtime.bigint() - started) / 1e9;
  rtts.sort((a, b) => a - b);
  const at = (q: number) => Math.round(rtts[Math.min(rtts.length - 1, Math.floor(q * rtts.length))] ?? NaN);
  return { p50: at(0.5), p99: at(0.99), perSec: Math.round(rtts.length / total) };
}

/** Datagrams/s with a window of 32 in flight for `ms` milliseconds (a lost one shrinks the window). */
async function throughput(port: number, ms: number): Promise<number> {
  const c = await udp();
  const payload = Buffer.alloc(1300, 7);
  let got = 0;
  let running = true;
  c.on('message', () => {
    got++;
    if (running) send(c, port, payload);
  });
  for (let i = 0; i < 32; i++) send(c, port, payload);
  await sleep(ms);
  running = false;
  return Math.round(got / (ms / 1000));
}

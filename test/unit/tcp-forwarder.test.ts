// The tcp transport's forwarder for real, in both runtimes, each started exactly as
// the target would start it: launch.ts's command through a login shell's -c, the
// programs on stdin, then frames. Loopback only, with a local UDP echo server standing
// in for mosh-server. Every process started here is tracked by pid and killed by pid.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, encodeFrames } from '../../src/tcp/framing.js';
import {
  LAUNCH_SH,
  forwarderLaunch,
  parseExit,
  type ForwarderLaunchSpec,
  type ForwarderRuntime,
  type ReadyLine,
} from '../../src/tcp/launch.js';
import { ForwarderOutput } from '../../src/tcp/output.js';
import { SH, shellJoin, shellQuote } from '../../src/remote/shell.js';
import {
  installRuntime,
  interpreter,
  PERL,
  PYTHON,
  pyenvBin,
  runtimeVariants,
} from '../support/interpreters.js';

const programs = {
  python3: readFileSync(new URL('../../src/tcp/runtime/forwarder.py', import.meta.url), 'utf8'),
  perl: readFileSync(new URL('../../src/tcp/runtime/forwarder.pl', import.meta.url), 'utf8'),
};
const PYTHON27 = pyenvBin('2.7.', 'python2.7');

// ---- bookkeeping: every process and socket is ours to end ----

const children: ChildProcessWithoutNullStreams[] = [];
const pids: number[] = [];
const sockets: dgram.Socket[] = [];
const dirs: string[] = [];
/** What any run wrote on stderr besides its EXIT line: a warning or a traceback is a bug. */
const stderrs: (() => string)[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const turn = () => new Promise((r) => setImmediate(r));
function isDead(pid: number): boolean {
  try {
    return /\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(10)) if (cond()) return true;
  return cond();
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  const mine = [...pids.splice(0), ...children.splice(0).map((c) => c.pid!)];
  for (const pid of mine) if (!isDead(pid)) process.kill(pid, 'SIGKILL');
  expect(await waitFor(() => mine.every(isDead), 2000)).toBe(true);
  const said = stderrs
    .splice(0)
    .map((s) => s())
    .join('')
    .replace(/^MOSHCTL-FWD EXIT .*\n/gm, '')
    .replace(/^(Killed|Terminated|Interrupt|Hangup)\n/gm, ''); // sh reporting a child's signal
  expect(said).toBe('');
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A seeded generator (mulberry32): a failing run can be repeated from the seed in its message. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(0, 255)));
  return { next, int, bytes };
}

// ---- UDP: the echo server stands in for mosh-server ----

async function udp(family: 'udp4' | 'udp6' = 'udp4', port = 0): Promise<dgram.Socket> {
  const s = dgram.createSocket(family);
  sockets.push(s);
  // A bind that fails (the port taken meanwhile) fails the test at once instead of hanging it.
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, family === 'udp4' ? '127.0.0.1' : '::1', () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s;
}
async function echoServer(family: 'udp4' | 'udp6' = 'udp4', port = 0) {
  const s = await udp(family, port);
  let seen = 0;
  s.on('message', (m, from) => {
    seen++;
    s.send(m, from.port, from.address);
  });
  return { port: s.address().port, seen: () => seen };
}
/** A port nothing listens on (now): datagrams sent there come back as ICMP port unreachable. */
async function deadPort(): Promise<number> {
  const s = await udp();
  const port = s.address().port;
  s.close();
  sockets.splice(sockets.indexOf(s), 1);
  return port;
}

// ---- running the launch command ----

interface Run {
  child: ChildProcessWithoutNullStreams;
  /** The first line, READY or ERROR; undefined when the command ended without one. */
  ready: Promise<ReadyLine | undefined>;
  /** Plain stdout text, for a run that never gets READY (the launch script's own ERROR). */
  text: () => string;
  stderr: () => string;
  code: Promise<number | null>;
  next: (ms?: number) => Promise<Buffer>;
  /** Datagrams received but not yet taken with next(). */
  queued: () => number;
  send: (...chunks: Buffer[]) => void;
}

/** Runs a command the way sshd does (login shell -c), programs first on stdin. */
function launch(
  command: string,
  stdin: string,
  env: NodeJS.ProcessEnv,
  argv0 = '/bin/sh',
  args = ['-c', command],
): Run {
  const child = spawn(argv0, args, { env, cwd: env.HOME ?? tmpdir() });
  children.push(child);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const stderr = () => err;
  stderrs.push(stderr);
  const out = new ForwarderOutput();
  let text = '';
  let failure: Error | undefined;
  const queue: Buffer[] = [];
  const waiters: ((d: Buffer | Error) => void)[] = [];
  let markReady: (r: ReadyLine | undefined) => void = () => {};
  const ready = new Promise<ReadyLine | undefined>((r) => (markReady = r));
  child.stdout.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    if (failure) return;
    try {
      const step = out.push(d);
      if (step.ready) markReady(step.ready);
      for (const datagram of step.datagrams) {
        const w = waiters.shift();
        if (w) w(datagram);
        else queue.push(datagram);
      }
    } catch (e) {
      failure = e as Error;
      for (const w of waiters.splice(0)) w(failure);
    }
  });
  const code = new Promise<number | null>((r) => child.on('close', r));
  void code.then(() => markReady(undefined));
  child.stdin.on('error', () => {}); // EPIPE once it is gone
  child.stdin.write(stdin);
  const next = (ms = 3000) => {
    const queued = queue.shift();
    if (queued) return Promise.resolve(queued);
    if (failure) return Promise.reject(failure);
    return new Promise<Buffer>((resolve, reject) => {
      const waiter = (d: Buffer | Error) => {
        clearTimeout(timer);
        if (d instanceof Error) reject(d);
        else resolve(d);
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no datagram back within ${ms} ms; stderr: ${err}`));
      }, ms);
      waiters.push(waiter);
    });
  };
  const send = (...chunks: Buffer[]) => {
    for (const c of chunks) child.stdin.write(c);
  };
  return { child, ready, text: () => text, stderr, code, next, queued: () => queue.length, send };
}

interface Started extends Run {
  pid: number;
}

/** Waits for READY from `runtime`; the forwarder's pid is tracked from then on. */
async function started(r: Run, runtime: ForwarderRuntime): Promise<Started> {
  const ready = await r.ready;
  if (!ready || !('pid' in ready))
    throw new Error(`no READY: ${JSON.stringify(ready)} ${r.text()} ${r.stderr()}`);
  pids.push(ready.pid);
  expect(ready.runtime).toBe(runtime);
  expect(ready.pid).not.toBe(r.child.pid); // the forwarder, not the sh that started it
  return { ...r, pid: ready.pid };
}

/** The end of a run: its exit code and the EXIT line on stderr. */
async function ended(r: Run) {
  const code = await r.code;
  const last = r.stderr().trim().split('\n').pop() ?? '';
  return { code, exit: parseExit(last) };
}

/** One round trip: the frame written in `pieces` random pieces, the echo awaited. */
async function roundTrip(r: Run, datagram: Buffer, rnd: ReturnType<typeof random>, pieces = 1) {
  const frame = encodeFrame(datagram);
  const cuts = Array.from({ length: pieces - 1 }, () => rnd.int(0, frame.length)).sort((a, b) => a - b);
  const at = [0, ...cuts, frame.length];
  for (let i = 1; i < at.length; i++) {
    r.send(frame.subarray(at[i - 1], at[i]));
    if (rnd.next() < 0.5) await turn(); // now and then a separate read on the other side
  }
  return r.next();
}

function stats(rtts: number[]) {
  const sorted = [...rtts].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  const mean = Math.round(sorted.reduce((a, b) => a + b, 0) / sorted.length);
  return `p50 ${at(0.5)} µs, p99 ${at(0.99)} µs, mean ${mean} µs`;
}

// ---- the forwarder in each runtime ----

// Real interpreters on a loaded CI machine: a start can take seconds.
describe.each(runtimeVariants)('the forwarder in $label', { timeout: 20_000 }, (variant) => {
  const { label, runtime } = variant;
  let env: NodeJS.ProcessEnv = {};
  beforeAll(() => {
    const bin = mkdtempSync(join(tmpdir(), 'moshctl-fwd-'));
    dirs.push(bin);
    installRuntime(bin, variant);
    env = { PATH: `${bin}:/usr/bin:/bin`, HOME: bin };
  });

  const start = async (to: ForwarderLaunchSpec['to'], idleTimeout = 30) => {
    const l = forwarderLaunch({ runtime, to, idleTimeout }, programs);
    return started(launch(l.command, l.stdin, env), runtime);
  };

  it('says READY as its own process group, and ping-pongs 1000 datagrams of 1-1400 bytes in random pieces', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    const stat = readFileSync(`/proc/${r.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    expect(Number(stat[2])).toBe(r.pid); // its own process group: kill -TERM -PID reaches it
    const seed = Date.now();
    const rnd = random(seed);
    const rtts: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const datagram = rnd.bytes(rnd.int(1, 1400));
      const t0 = process.hrtime.bigint();
      const back = await roundTrip(r, datagram, rnd, rnd.int(1, 4));
      rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
      if (!back.equals(datagram)) expect.fail(`datagram ${i} came back changed (seed ${seed})`);
    }
    // Whole frames of mosh's usual size, for a latency figure free of the piece-writing.
    const whole: number[] = [];
    const payload = rnd.bytes(1300);
    for (let i = 0; i < 1000; i++) {
      const t0 = process.hrtime.bigint();
      r.send(encodeFrame(payload));
      await r.next();
      whole.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    // The same without the forwarder: a UDP socket here straight to the echo server.
    const direct: number[] = [];
    const c = await udp();
    for (let i = 0; i < 1000; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise((resolve) => {
        c.once('message', resolve);
        c.send(payload, echo.port, '127.0.0.1');
      });
      direct.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    console.log(
      `forwarder in ${label} (${variant.path}), loopback round trip: frames over the launch's stdio, forwarder, UDP echo:\n` +
        `  1000 × 1-1400 B, frames in random pieces: ${stats(rtts)}\n` +
        `  1000 × 1300 B, whole frames:              ${stats(whole)}\n` +
        `  1000 × 1300 B, direct UDP (no forwarder): ${stats(direct)}`,
    );
    r.child.stdin.end();
    expect(await ended(r)).toEqual({
      code: 0,
      exit: { why: 'eof', sent: 2000, received: 2000, dropped: 0, refused: 0 },
    });
  });

  it('carries 1000 datagrams 16 in flight, the stream cut anywhere across frames', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    const seed = Date.now();
    const rnd = random(seed);
    const sent = Array.from({ length: 1000 }, () => rnd.bytes(rnd.int(1, 1400)));
    let written = 0;
    for (let got = 0; got < sent.length; got++) {
      if (written - got < 8) {
        const batch = sent.slice(written, Math.min(sent.length, got + 16));
        written += batch.length;
        const stream = encodeFrames(batch);
        for (let at = 0; at < stream.length;) {
          const end = Math.min(stream.length, at + rnd.int(1, 3000));
          r.send(stream.subarray(at, end));
          at = end;
          if (rnd.next() < 0.3) await turn();
        }
      }
      const back = await r.next();
      if (!back.equals(sent[got]!))
        expect.fail(`datagram ${got} came back changed or out of order (seed ${seed})`);
    }
    expect(echo.seen()).toBe(1000);
  });

  it('reassembles a 65507-byte frame, and a header, split across reads', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    const big = random(7).bytes(65507);
    const frame = encodeFrame(big);
    r.send(frame.subarray(0, 1));
    await sleep(50);
    r.send(frame.subarray(1, 30000));
    await sleep(50);
    expect(echo.seen()).toBe(0);
    r.send(frame.subarray(30000));
    expect((await r.next()).equals(big)).toBe(true);
    const small = encodeFrame(Buffer.from('x'));
    r.send(small.subarray(0, 1));
    await sleep(50);
    r.send(small.subarray(1));
    expect((await r.next()).toString()).toBe('x');
  });

  it('forwards to ::1 given as [::1]:PORT', async () => {
    const echo = await echoServer('udp6');
    const r = await start({ address: '::1', port: echo.port });
    expect((await roundTrip(r, Buffer.from('v6'), random(1))).toString()).toBe('v6');
  });

  it('exits 0 on EOF, even in the middle of a frame', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    r.send(encodeFrame(Buffer.from('half a frame')).subarray(0, 5));
    r.child.stdin.end();
    expect(await ended(r)).toEqual({
      code: 0,
      exit: { why: 'eof', sent: 0, received: 0, dropped: 0, refused: 0 },
    });
  });

  it('exits 0 after --idle-timeout without a datagram either way, and not before', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port }, 1);
    await sleep(600);
    expect((await roundTrip(r, Buffer.from('still here'), random(2))).toString()).toBe('still here');
    const last = Date.now();
    await sleep(600); // 1.2 s after READY: alive only because of the datagram
    expect(isDead(r.pid)).toBe(false);
    expect(await ended(r)).toMatchObject({ code: 0, exit: { why: 'idle', sent: 1, received: 1 } });
    expect(Date.now() - last).toBeGreaterThan(900);
    expect(Date.now() - last).toBeLessThan(2000);
  });

  it('counts and skips ECONNREFUSED while nothing listens, and goes on once a server does', async () => {
    const port = await deadPort();
    const r = await start({ address: '127.0.0.1', port });
    r.send(encodeFrames(Array.from({ length: 10 }, () => Buffer.from('anyone?')))); // one write: sends back to back
    for (let i = 0; i < 5; i++) {
      await sleep(20);
      r.send(encodeFrame(Buffer.from('anyone?')));
    }
    await sleep(100);
    expect(isDead(r.pid)).toBe(false);
    await echoServer('udp4', port); // mosh-server (back) on its port
    let back: Buffer | undefined;
    for (let i = 0; i < 50 && !back; i++) {
      r.send(encodeFrame(Buffer.from('hello again')));
      back = await r.next(100).catch(() => undefined);
    }
    expect(back?.toString()).toBe('hello again');
    r.child.stdin.end();
    const { code, exit } = await ended(r);
    expect(code).toBe(0);
    expect(exit?.refused).toBeGreaterThan(0);
    expect(exit?.dropped).toBeGreaterThan(0); // a send right after one refused: the send itself failed
    expect(exit!.sent + exit!.dropped).toBeGreaterThanOrEqual(16);
  });

  it('ignores SIGHUP, and exits 0 on SIGTERM to its group and on SIGINT', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    process.kill(r.pid, 'SIGHUP');
    await sleep(100);
    expect((await roundTrip(r, Buffer.from('after HUP'), random(3))).toString()).toBe('after HUP');
    process.kill(-r.pid, 'SIGTERM');
    expect(await ended(r)).toMatchObject({ code: 0, exit: { why: 'signal', sent: 1 } });
    const r2 = await start({ address: '127.0.0.1', port: echo.port });
    process.kill(r2.pid, 'SIGINT');
    expect(await ended(r2)).toMatchObject({ code: 0, exit: { why: 'signal' } });
  });

  it('exits 0 when nobody reads its stdout any more', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    r.child.stdout.destroy();
    for (let i = 0; i < 20 && !isDead(r.pid); i++) {
      r.send(encodeFrame(Buffer.alloc(1000, 1)));
      await sleep(20);
    }
    expect(await ended(r)).toMatchObject({ code: 0, exit: { why: 'closed' } });
  });

  it('exits 6 on a frame length of 0: the stream is out of step', async () => {
    const echo = await echoServer();
    const r = await start({ address: '127.0.0.1', port: echo.port });
    r.send(encodeFrame(Buffer.from('fine')), Buffer.from([0, 0, 1]));
    expect(await ended(r)).toEqual({
      code: 6,
      exit: { why: 'bad-frame', sent: 1, received: expect.any(Number) as number, dropped: 0, refused: 0 },
    });
  });

  it.skipIf(!PYTHON)(
    'keeps frames whole on a non-blocking stdout that a slow reader leaves full',
    async () => {
      const echo = await echoServer();
      const l = forwarderLaunch(
        { runtime, to: { address: '127.0.0.1', port: echo.port }, idleTimeout: 30 },
        programs,
      );
      // O_NONBLOCK on the open file description behind fd 1, then the login shell as usual.
      const nonblocking =
        'import os,sys; os.set_blocking(1, False); os.execv("/bin/sh", ["sh", "-c", sys.argv[1]])';
      const r = await started(
        launch(l.command, l.stdin, env, PYTHON ?? 'python3', ['-c', nonblocking, l.command]),
        runtime,
      );
      expect(
        Number.parseInt(/flags:\s+(\d+)/.exec(readFileSync(`/proc/${r.pid}/fdinfo/1`, 'utf8'))![1]!, 8) &
          0o4000,
      ).toBe(0o4000);
      r.child.stdout.pause();
      // Datagram i: its index in the first two bytes, then 1398 bytes of i & 0xff.
      const sent = Array.from({ length: 400 }, (_, i) => {
        const d = Buffer.alloc(1400, i & 0xff);
        d.writeUInt16BE(i, 0);
        return d;
      });
      for (let i = 0; i < sent.length; i += 20) {
        r.send(encodeFrames(sent.slice(i, i + 20)));
        await sleep(2); // the echo server's and the forwarder's receive buffers keep up
      }
      // Until the echo server hears nothing more: the forwarder is stuck on its full stdout
      // (and so reads no stdin), or everything went through and waits in the channel.
      for (let seen = -1; seen !== echo.seen(); await sleep(150)) seen = echo.seen();
      expect(isDead(r.pid)).toBe(false);
      r.child.stdout.resume();
      const got: Buffer[] = [];
      for (let seen = -1; seen !== echo.seen() || r.queued() > 0; await sleep(150)) {
        seen = echo.seen();
        while (r.queued() > 0) got.push(await r.next());
      }
      // UDP may drop while the forwarder is blocked; what arrives must be whole and in order.
      expect(got.length).toBeGreaterThan(150);
      const indices = got.map((b) => b.readUInt16BE(0));
      expect(got.every((b, i) => b.equals(sent[indices[i]!]!))).toBe(true);
      expect(indices.every((x, i) => i === 0 || x > indices[i - 1]!)).toBe(true);
    },
  );

  it('refuses bad arguments with an ERROR line and exit 2', async () => {
    const l = forwarderLaunch({ runtime, to: { address: '127.0.0.1', port: 9 }, idleTimeout: 5 }, programs);
    const [p, n] = runtime === 'python3' ? [programs.python3.length, 0] : [0, programs.perl.length];
    // launch.ts refuses bad values itself, so hand the forwarder some directly.
    for (const [args, why] of [
      [['--to', '127.0.0.1:9', '--idle-timeout', '0'], '--idle-timeout must be 1-604800 seconds'],
      [['--to', 'a;b:1', '--idle-timeout', '5'], '--to: bad host'],
      [['--to', '127.0.0.1:0', '--idle-timeout', '5'], '--to: bad port'],
      [['--to', '127.0.0.1:9', '--idle-timeout', '5', '--bogus', '1'], "unknown argument '--bogus'"],
      [['--to', '127.0.0.1:9'], 'missing --idle-timeout'],
    ] as const) {
      const bad = launch(
        `${SH} -c ${shellQuote(LAUNCH_SH)} moshctl-fwd ${shellJoin([runtime, p, n, ...args])}`,
        l.stdin,
        env,
      );
      expect(await bad.code).toBe(2);
      expect(await bad.ready).toEqual({ error: expect.stringContaining(why) as string });
    }
  });
});

// ---- the launch script choosing a runtime, with fakes on PATH ----

type Fake = 'real' | 'missing' | 'noexec' | 'old' | 'nomodule' | { path: string };

/** A bin folder holding only python3 and perl as asked: the script needs no other program. */
function binWith(python3: Fake, perl: Fake): string {
  const dir = mkdtempSync(join(tmpdir(), 'moshctl-fwd-launch-'));
  dirs.push(dir);
  // flag wx: a fake never lands on an existing file, let alone through a link onto the real one
  const put = (name: string, text: string, mode = 0o755) =>
    writeFileSync(join(dir, name), text, { mode, flag: 'wx' });
  if (python3 === 'real') symlinkSync(PYTHON!, join(dir, 'python3'));
  if (typeof python3 === 'object') symlinkSync(python3.path, join(dir, 'python3'));
  if (python3 === 'noexec') put('python3', '', 0o644); // a path that exists but cannot run: 126
  // The real bootstrap in an interpreter that says it is 3.5: it must exit 90, reading nothing.
  if (python3 === 'old')
    put(
      'python3',
      `#!/bin/sh\nb=$2; shift 2\nexec ${PYTHON} -c 'import sys; sys.version_info = (3, 5, 9); exec(sys.argv.pop(1))' "$b" "$@"\n`,
    );
  if (perl === 'real') symlinkSync(PERL!, join(dir, 'perl'));
  if (perl === 'noexec') put('perl', '', 0o644);
  // The real bootstrap in a perl whose Socket cannot load.
  if (perl === 'nomodule')
    put(
      'perl',
      `#!/bin/sh\nb=$2; shift 2\nexec ${PERL} -e 'unshift @INC, sub { die "no Socket" if $_[1] eq "Socket.pm"; return };' -e "$b" "$@"\n`,
    );
  return dir;
}

const which = (cmd: string) => interpreter('/bin/sh', ['-c', `command -v ${cmd}`]);
const haveBoth = PYTHON !== undefined && PERL !== undefined;

/** sh saying a fake could not run ("python3: not found", "perl: Permission denied"), in dash's or bash's words. */
const SH_ON_FAKES = /^moshctl-fwd: (line )?\d+: (python3|perl): (not found|Permission denied)\n/gm;

/** Checks a run's stderr here, allowing sh's words on the fakes, instead of in afterEach. */
function expectQuietBesidesFakes(r: Run) {
  stderrs.splice(stderrs.indexOf(r.stderr), 1);
  expect(
    r
      .stderr()
      .replace(SH_ON_FAKES, '')
      .replace(/^MOSHCTL-FWD EXIT .*\n/m, ''),
  ).toBe('');
}

describe.skipIf(!haveBoth)('the launch script', () => {
  /** Runs the auto launch with PATH = bin only, expects READY from `runtime`, proves the stream starts at the right byte. */
  async function expectForwarder(bin: string, runtime: ForwarderRuntime, shell = '/bin/sh') {
    const echo = await echoServer();
    const l = forwarderLaunch(
      { runtime: 'auto', to: { address: '127.0.0.1', port: echo.port }, idleTimeout: 30 },
      programs,
    );
    // LANG: fish exports a locale of its own when none is set, and perl warns when it is not installed.
    const r = await started(launch(l.command, l.stdin, { PATH: bin, HOME: bin, LANG: 'C' }, shell), runtime);
    expect(readFileSync(`/proc/${r.pid}/cmdline`, 'utf8')).toContain(runtime);
    const rnd = random(4);
    for (let i = 0; i < 20; i++) {
      const d = rnd.bytes(rnd.int(1, 1400));
      expect((await roundTrip(r, d, rnd, 3)).equals(d)).toBe(true);
    }
    r.child.stdin.end();
    expect(await ended(r)).toMatchObject({ code: 0, exit: { why: 'eof', sent: 20, received: 20 } });
    expectQuietBesidesFakes(r);
  }

  it('runs python3 when it works, unmoved by modules in the home folder', async () => {
    const bin = binWith('real', 'real');
    for (const m of ['socket', 'select', 'struct', 'errno'])
      writeFileSync(join(bin, `${m}.py`), 'raise SystemExit(66)\n', { flag: 'wx' });
    await expectForwarder(bin, 'python3');
  });

  it.each<[Fake, string]>([
    ['missing', '127'],
    ['noexec', '126: the path exists but cannot run'],
    ['old', '90 from the bootstrap'],
  ])('falls back to perl when python3 is %s (%s), with the stream intact', async (fake) => {
    await expectForwarder(binWith(fake, 'real'), 'perl');
  });

  it.skipIf(!PYTHON27)('falls back to perl from a real python 2.7, which says nothing', async () => {
    await expectForwarder(binWith({ path: PYTHON27! }, 'real'), 'perl');
  });

  const shells = ['bash', 'dash', 'zsh', 'fish'].map(which).filter((s): s is string => !!s);
  it.each(shells)('works when the login shell is %s', async (shell) => {
    await expectForwarder(binWith('noexec', 'real'), 'perl', shell);
  });

  it.each<[Fake, Fake]>([
    ['missing', 'missing'],
    ['noexec', 'noexec'],
    ['old', 'nomodule'],
  ])('says what to install and exits 5 when neither runs (python3 %s, perl %s)', async (py, pl) => {
    const bin = binWith(py, pl);
    const l = forwarderLaunch(
      { runtime: 'auto', to: { address: '127.0.0.1', port: 9 }, idleTimeout: 5 },
      programs,
    );
    const r = launch(l.command, l.stdin, { PATH: bin, HOME: bin });
    expect(await r.code).toBe(5);
    expect(r.text()).toBe(
      'MOSHCTL-FWD ERROR no forwarder runtime: neither python3 (>= 3.6) nor perl runs here; ' +
        'install python3 (apt install python3) or perl (the perl-base package)\n',
    );
    expect(await r.ready).toEqual({ error: expect.stringMatching(/^no forwarder runtime: /) as string });
    expectQuietBesidesFakes(r);
  });

  it('tries only the runtime asked for', async () => {
    const l = forwarderLaunch(
      { runtime: 'python3', to: { address: '127.0.0.1', port: 9 }, idleTimeout: 5 },
      programs,
    );
    const bin = binWith('noexec', 'real');
    const r = launch(l.command, l.stdin, { PATH: bin, HOME: bin });
    expect(await r.code).toBe(5);
    expect(r.text()).toMatch(
      /^MOSHCTL-FWD ERROR no forwarder runtime: python3 \(>= 3\.6\) does not run here/,
    );
    expectQuietBesidesFakes(r);
  });
});

// What doctor runs on the target, run here for real: the mosh-server and
// locale check under /bin/sh with a PATH we control, and the UDP echo in both
// runtimes, started exactly as the target would start it (the launch command
// through a shell's -c, the programs on stdin), answered by doctor's own probe.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  echoLaunch,
  isUtf8,
  parseEchoLine,
  parseTargetCheck,
  targetCheckCommand,
} from '../../src/doctor/remote.js';
import { udpRoundTrip } from '../../src/doctor/udp-probe.js';
import { targetResults } from '../../src/doctor/verdicts.js';
import { UserError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'moshctl-doctor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const which = (p: string): string =>
  spawnSync('sh', ['-c', `command -v ${p}`], { encoding: 'utf8' }).stdout.trim();

/** A folder for PATH with sed and locale, and a mosh-server stub when `server` is given. */
function pathWith(name: string, server?: string): string {
  const bin = join(dir, name);
  spawnSync('mkdir', ['-p', bin]);
  for (const p of ['sed', 'locale']) symlinkSync(which(p), join(bin, p));
  if (server !== undefined)
    writeFileSync(join(bin, 'mosh-server'), `#!/bin/sh\n${server}\n`, { mode: 0o755 });
  return bin;
}

function runTargetCheck(path: string, locale: string) {
  // As ssh would: the login shell gets the whole line.
  const r = spawnSync('/bin/sh', ['-c', targetCheckCommand(locale)], {
    encoding: 'utf8',
    env: { PATH: path },
  });
  return { stdout: r.stdout, stderr: r.stderr, code: r.status };
}

const target = (locale: string) => ({
  name: 'box',
  mosh: {
    locale,
    server_ports: { from: 60001, to: 60010 },
    network_timeout: 600,
    signal_timeout: 60,
    session: 'none' as const,
    transport: 'udp' as const,
    bind_server: 'ssh',
    server: 'mosh-server',
    client: 'mosh-client',
    predict_overwrite: false,
    no_init: false,
  },
});

describe('mosh-server and the locale on the target', () => {
  it('reads the version line and a UTF-8 locale', () => {
    const bin = pathWith('ok', 'echo "mosh-server (mosh 1.4.0) [build mosh 1.4.0]"; echo "Copyright 2012"');
    const r = runTargetCheck(bin, 'C.UTF-8');
    const facts = parseTargetCheck(r.stdout);
    expect(facts).toEqual({
      server: { state: 'ok', version: 'mosh-server (mosh 1.4.0) [build mosh 1.4.0]' },
      charmap: 'UTF-8',
    });
    expect(targetResults(target('C.UTF-8'), facts, r).map((c) => c.status)).toEqual(['ok', 'ok']);
  });

  it('a missing mosh-server and a locale that is not installed both fail, with fixes', () => {
    const bin = pathWith('missing');
    const r = runTargetCheck(bin, 'xx_YY.UTF-8');
    const rs = targetResults(target('xx_YY.UTF-8'), parseTargetCheck(r.stdout), r);
    expect(rs.map((c) => `${c.check} ${c.status}`)).toEqual(['mosh-server fail', 'locale fail']);
    expect(rs[0]?.hint).toContain('apt install mosh');
    expect(rs[1]?.detail).toMatch(/^xx_YY\.UTF-8 is not a UTF-8 locale there \(its character set: ANSI/);
    expect(rs[1]?.hint).toContain('locale -a');
  });

  it('a mosh-server that cannot run is not taken for an installed one', () => {
    const bin = pathWith('broken', 'echo "cannot execute: Permission denied" >&2; exit 126');
    const r = runTargetCheck(bin, 'C.UTF-8');
    const [server] = targetResults(target('C.UTF-8'), parseTargetCheck(r.stdout), r);
    expect(server).toMatchObject({ status: 'fail', check: 'mosh-server' });
    expect(server?.detail).toContain('Permission denied');
  });

  it('a login that runs something else (ForceCommand) prints no marker: mosh-server fails, saying so', () => {
    const rs = targetResults(target('C.UTF-8'), parseTargetCheck('This account is not available\n'), {
      code: 1,
      stderr: '',
    });
    expect(rs).toHaveLength(1);
    expect(rs[0]?.hint).toContain('ForceCommand');
  });

  it('refuses a locale that could inject into the shell, and quotes the rest', () => {
    expect(() => targetCheckCommand('C.UTF-8; touch /tmp/x')).toThrow(UserError);
    expect(() => targetCheckCommand('$(id)')).toThrow(UserError);
    expect(targetCheckCommand('en_US.UTF-8')).toMatch(/ moshctl-doctor en_US\.UTF-8$/);
    expect(isUtf8('utf8')).toBe(true);
    expect(isUtf8('ANSI_X3.4-1968')).toBe(false);
  });
});

// ---- the echo, for real ----

const children: ChildProcessWithoutNullStreams[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of sockets.splice(0)) s.close();
});

/** A range of ports nothing here uses, different for every test. */
let base = 40_000 + Math.floor(Math.random() * 1000) * 20;
const range = (n: number) => {
  base += 20;
  return { from: base, to: base + n - 1 };
};

async function startEcho(runtime: 'python3' | 'perl', ports: { from: number; to: number }) {
  const launch = echoLaunch(ports, 20, runtime);
  const child = spawn('/bin/sh', ['-c', launch.command]);
  children.push(child);
  child.stdin.write(launch.stdin);
  let out = '';
  const first = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0] ?? '');
    });
    child.on('exit', () => resolve(out.split('\n')[0] ?? ''));
    setTimeout(() => reject(new Error(`no line from the echo: ${out}`)), 10_000);
  });
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
  return { child, line: parseEchoLine(first), exited };
}

async function bound(port: number): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((resolve) => s.bind(port, '0.0.0.0', resolve));
  return s;
}

const available = (['python3', 'perl'] as const).filter((r) => which(r) !== '');

describe.each(available)('the UDP echo in %s', (runtime) => {
  it('takes the first free port of the range, echoes datagrams, and exits as soon as stdin ends', async () => {
    const ports = range(5);
    await bound(ports.from);
    const echo = await startEcho(runtime, ports);
    expect(echo.line).toEqual({ port: ports.from + 1, runtime });
    const port = ports.from + 1;
    const r = await udpRoundTrip('127.0.0.1', port, { count: 3, intervalMs: 50, waitMs: 2_000 });
    expect(r).toMatchObject({ sent: 3, echoed: 3 });
    const started = Date.now();
    echo.child.stdin.end();
    expect(await echo.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('says so when every port of the range is taken', async () => {
    const ports = range(1);
    await bound(ports.from);
    const echo = await startEcho(runtime, ports);
    expect(echo.line).toEqual({ error: `no free UDP port in ${ports.from}-${ports.to}`, noRuntime: false });
    expect(await echo.exited).toBe(3);
  });
});

describe('the probe', () => {
  it('reports no echo from a port where nothing answers (the test can fail)', async () => {
    const ports = range(1);
    const r = await udpRoundTrip('127.0.0.1', ports.from, { count: 2, intervalMs: 50, waitMs: 300 });
    expect(r).toEqual({ sent: 2, echoed: 0, rttMs: undefined });
  });

  it('stops at once when aborted', async () => {
    const abort = new AbortController();
    const ports = range(1);
    const p = udpRoundTrip('127.0.0.1', ports.from, {
      count: 1,
      intervalMs: 50,
      waitMs: 5_000,
      signal: abort.signal,
    });
    abort.abort(new Error('interrupted'));
    await expect(p).rejects.toThrow('interrupted');
  });
});

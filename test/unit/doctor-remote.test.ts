// What doctor runs on the target, run here for real: the mosh-server and
// locale check under /bin/sh with a PATH we control, and the UDP echo in both
// runtimes, started exactly as the target would start it (the launch command
// through a shell's -c, the programs on stdin), answered by doctor's own probe.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
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
import { moshVersion, targetResults, versionsResult } from '../../src/doctor/verdicts.js';
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

function runTargetCheck(path: string, locale: string, server?: string, home = join(dir, 'no-home')) {
  // As ssh would: the login shell gets the whole line.
  const r = spawnSync('/bin/sh', ['-c', targetCheckCommand(locale, server)], {
    encoding: 'utf8',
    env: { PATH: path, HOME: home },
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
      server: {
        state: 'ok',
        version: 'mosh-server (mosh 1.4.0) [build mosh 1.4.0]',
        path: join(bin, 'mosh-server'),
      },
      charmap: 'UTF-8',
    });
    expect(targetResults(target('C.UTF-8'), facts, r)[0]?.detail).toBe(
      `${join(bin, 'mosh-server')}: mosh-server (mosh 1.4.0) [build mosh 1.4.0]`,
    );
    expect(targetResults(target('C.UTF-8'), facts, r).map((c) => c.status)).toEqual(['ok', 'ok']);
  });

  it('a missing mosh-server and a locale that is not installed both fail, with fixes', () => {
    const bin = pathWith('missing');
    // Where up would look too: a mosh-server in ~/.local/bin is named with the setting to use.
    const home = join(dir, 'home-missing');
    mkdirSync(join(home, '.local/bin'), { recursive: true });
    writeFileSync(join(home, '.local/bin/mosh-server'), '#!/bin/sh\n', { mode: 0o755 });
    const r = runTargetCheck(bin, 'xx_YY.UTF-8', 'mosh-server', home);
    const rs = targetResults(target('xx_YY.UTF-8'), parseTargetCheck(r.stdout), r);
    expect(rs.map((c) => `${c.check} ${c.status}`)).toEqual(['mosh-server fail', 'locale fail']);
    expect(rs[0]?.detail).toBe(
      'mosh-server is not installed (or not on the PATH of a non-interactive ssh session)',
    );
    expect(rs[0]?.hint).toContain(`${home}/.local/bin/mosh-server`);
    expect(rs[0]?.hint).toContain('set mosh.server: ');
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
    expect(targetCheckCommand('en_US.UTF-8')).toMatch(/ moshctl-doctor en_US\.UTF-8 mosh-server$/);
    expect(() => targetCheckCommand('C.UTF-8', '$(id)/mosh-server')).toThrow(UserError);
  });

  it('checks the mosh-server mosh.server names: ~/ is the home there, a space stays in the path', () => {
    const bin = pathWith('named');
    const home = join(dir, 'home-named');
    mkdirSync(join(home, 'my bin'), { recursive: true });
    writeFileSync(join(home, 'my bin/mosh-server'), '#!/bin/sh\necho "mosh-server (mosh 1.3.2)"\n', {
      mode: 0o755,
    });
    const r = runTargetCheck(bin, 'C.UTF-8', '~/my bin/mosh-server', home);
    expect(parseTargetCheck(r.stdout).server).toEqual({
      state: 'ok',
      version: 'mosh-server (mosh 1.3.2)',
      path: join(home, 'my bin/mosh-server'),
    });
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

describe('mosh-client here and mosh-server there', () => {
  const server = (version: string) => ({ state: 'ok' as const, version });
  const client = (version: string) => ({ state: 'ok' as const, path: '/usr/bin/mosh-client', version });

  it('reads versions from --version lines', () => {
    expect(moshVersion('mosh-server (mosh 1.4.0) [build mosh 1.4.0]')).toEqual([1, 4, 0]);
    expect(moshVersion('mosh-client (mosh 1.3)')).toEqual([1, 3, 0]);
    expect(moshVersion('something else')).toBeUndefined();
  });

  it('ok when major.minor agree; a warning naming the older side and its fix when they do not', () => {
    expect(
      versionsResult('box', server('mosh-server (mosh 1.4.1)'), client('mosh-client (mosh 1.4.0)')),
    ).toMatchObject({ status: 'ok', detail: 'mosh-client 1.4.0 here, mosh-server 1.4.1 on box' });
    expect(
      versionsResult('box', server('mosh-server (mosh 1.3.2)'), client('mosh-client (mosh 1.4.0)')),
    ).toEqual({
      host: 'box',
      check: 'mosh-versions',
      status: 'warn',
      detail:
        'mosh-client 1.4.0 here, mosh-server 1.3.2 on box: the session has what 1.3.2 has, so no true colour (24-bit) and no OSC 52 clipboard, which came with 1.4',
      hint: 'update mosh on box to 1.4 or later (its package manager; brew upgrade mosh on macOS)',
    });
    expect(
      versionsResult('box', server('mosh-server (mosh 1.5.0)'), client('mosh-client (mosh 1.4.0)')),
    ).toMatchObject({
      status: 'warn',
      detail:
        'mosh-client 1.4.0 here, mosh-server 1.5.0 on box: they differ in major.minor; the session has only what the older one has',
    });
  });

  it('is not compared when either version is unknown', () => {
    expect(
      versionsResult('box', { state: 'missing', found: [] }, client('mosh-client (mosh 1.4.0)')),
    ).toMatchObject({
      status: 'skip',
      detail: "not compared: mosh-server's version is not known",
    });
    expect(versionsResult('box', server('mosh-server (mosh 1.4.0)'), undefined).status).toBe('skip');
  });
});

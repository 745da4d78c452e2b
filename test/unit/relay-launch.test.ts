// launch.ts: the command text, its validation, and the runtime fallback for real:
// /bin/sh runs the launch script with a PATH of fakes (missing, not executable,
// "too old", a module missing) beside the real python3 and perl, on 127.0.0.1 only.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  PING,
  QUIT,
  STATUS,
  parseListen,
  parseSimple,
  parseStatus,
  toLine,
} from '../../src/relay/control.js';
import {
  LAUNCH_SH,
  PERL_BOOT,
  PYTHON_BOOT,
  relayLaunch,
  type RelayLaunchSpec,
} from '../../src/relay/launch.js';

const programs = {
  python3: readFileSync(new URL('../../src/relay/runtime/relay.py', import.meta.url), 'utf8'),
  perl: readFileSync(new URL('../../src/relay/runtime/relay.pl', import.meta.url), 'utf8'),
};
const which = (cmd: string): string | undefined =>
  spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || undefined;
// The interpreter itself: python3 on PATH may be a wrapper (pyenv) that needs more of PATH.
const PYTHON =
  spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).stdout?.trim() ||
  undefined;
const PERL = which('perl');
const haveBoth = PYTHON !== undefined && PERL !== undefined;
/** An interpreter of an old version, where pyenv keeps one: `old('2.7', 'python2.7')`. */
function pyenvPython(version: string, exe: string): string | undefined {
  const root = join(process.env.PYENV_ROOT ?? join(homedir(), '.pyenv'), 'versions');
  const dir = existsSync(root) ? readdirSync(root).find((v) => v.startsWith(`${version}.`)) : undefined;
  return dir && existsSync(join(root, dir, 'bin', exe)) ? join(root, dir, 'bin', exe) : undefined;
}
const PYTHON27 = pyenvPython('2.7', 'python2.7');
const PYTHON36 = pyenvPython('3.6', 'python3.6');

const spec = (more: Partial<RelayLaunchSpec> = {}): RelayLaunchSpec => {
  const from = 52000 + Math.floor(Math.random() * 700) * 10;
  return { runtime: 'auto', listen: { from, to: from + 9 }, idleTimeout: 30, ...more };
};

describe('relayLaunch (the text)', () => {
  it('runs a constant script under /bin/sh with every value a quoted argument', () => {
    const { command, stdin } = relayLaunch(
      spec({ listen: { from: 60001, to: 60010 }, to: { address: '10.0.0.7', port: 60001 } }),
      programs,
    );
    const P = programs.python3.length;
    const L = programs.perl.length;
    expect(command.startsWith(`/bin/sh -c '`)).toBe(true);
    expect(
      command.endsWith(
        `' moshctl-relay auto ${P} ${L} --ports 60001-60010 --idle-timeout 30 --to 10.0.0.7:60001`,
      ),
    ).toBe(true);
    expect(stdin).toBe(programs.python3 + programs.perl);
    expect(Buffer.byteLength(stdin)).toBe(P + L);
  });

  it('sends one program, with counts to match, when a single runtime is asked for', () => {
    const py = relayLaunch(spec({ runtime: 'python3', maxClients: 8, refusedExit: 5 }), programs);
    expect(py.stdin).toBe(programs.python3);
    expect(py.command).toMatch(new RegExp(`moshctl-relay python3 ${programs.python3.length} 0 --ports `));
    expect(py.command).toMatch(/--max-clients 8 --refused-exit 5$/);
    const pl = relayLaunch(spec({ runtime: 'perl', to: { address: '::1', port: 7 } }), programs);
    expect(pl.stdin).toBe(programs.perl);
    expect(pl.command).toMatch(new RegExp(`moshctl-relay perl 0 ${programs.perl.length} --ports `));
    expect(pl.command).toMatch(/--to '\[::1\]:7'$/);
  });

  it('keeps the script free of backslashes, and the bootstraps free of single quotes', () => {
    expect(LAUNCH_SH).not.toMatch(/\\/);
    expect(LAUNCH_SH).not.toMatch(/\n/); // one line: a csh login shell takes no newline in quotes
    expect(PYTHON_BOOT).not.toMatch(/['\\]/);
    expect(PERL_BOOT).not.toMatch(/['\\]/);
  });

  it.each([
    ['a;b', 'next-hop address'],
    ['$(reboot)', 'next-hop address'],
    ['name$x.example', 'next-hop address'],
    ['-oProxyCommand', 'next-hop address'],
    ['fe80::1%eth0', 'next-hop address'],
    ['', 'next-hop address'],
  ])('refuses the next hop %j', (address, what) => {
    expect(() => relayLaunch(spec({ to: { address, port: 1 } }), programs)).toThrow(what);
    expect(() => toLine(address, 1)).toThrow(what);
  });

  it('refuses bad numbers, runtimes and programs', () => {
    expect(() => relayLaunch(spec({ to: { address: 'h', port: 0 } }), programs)).toThrow('next-hop port');
    expect(() => relayLaunch(spec({ idleTimeout: 0 }), programs)).toThrow('idle timeout');
    expect(() => relayLaunch(spec({ idleTimeout: 1.5 }), programs)).toThrow('idle timeout');
    expect(() => relayLaunch(spec({ listen: { from: 9, to: 8 } }), programs)).toThrow('listen port');
    expect(() => relayLaunch(spec({ maxClients: 5000 }), programs)).toThrow('max clients');
    expect(() => relayLaunch(spec({ runtime: 'ruby' as 'auto' }), programs)).toThrow('runtime');
    expect(() => relayLaunch(spec(), { ...programs, perl: '# é' })).toThrow('ASCII');
  });

  it('formats control lines', () => {
    expect(toLine('bastion-2.example', 60001)).toBe('TO bastion-2.example 60001\n');
    expect(toLine('::1', 9)).toBe('TO ::1 9\n');
    expect([PING, STATUS, QUIT]).toEqual(['PING\n', 'STATUS\n', 'QUIT\n']);
  });
});

// ---- for real, with fakes on PATH ----

const dirs: string[] = [];
const children: ChildProcessWithoutNullStreams[] = [];
const pids: number[] = [];

afterEach(() => {
  for (const pid of pids.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Fake = 'real' | 'missing' | 'noexec' | 'old' | 'nomodule' | { path: string };

/** A bin folder holding only python3 and perl as asked: the script needs no other program. */
function binWith(python3: Fake, perl: Fake): string {
  const dir = mkdtempSync(join(tmpdir(), 'moshctl-launch-'));
  dirs.push(dir);
  // flag wx: a fake never lands on an existing file, let alone through a link onto the real one
  const put = (name: string, text: string, mode = 0o755) =>
    writeFileSync(join(dir, name), text, { mode, flag: 'wx' });
  if (python3 === 'real') symlinkSync(PYTHON!, join(dir, 'python3'));
  if (typeof python3 === 'object') symlinkSync(python3.path, join(dir, 'python3'));
  if (python3 === 'noexec') put('python3', '', 0o644); // like /dev/null mounted over it: 126
  // Runs the real bootstrap in an interpreter that says it is 3.5: it must exit 90, reading nothing.
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

interface Run {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  next: () => Promise<string>;
  code: Promise<number | null>;
}

function run(command: string, stdin: string, bin: string, shell = '/bin/sh', cwd = bin): Run {
  const child = spawn(shell, ['-c', command], { env: { PATH: bin, HOME: bin }, cwd });
  children.push(child);
  const lines: string[] = [];
  let buf = '';
  let wake = () => {};
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
    wake();
  });
  child.stdin.on('error', () => {}); // EPIPE when a run ends before reading everything
  child.stdin.write(stdin);
  const code = new Promise<number | null>((r) => child.on('close', r));
  let read = 0;
  const next = async (): Promise<string> => {
    for (const end = Date.now() + 5000; Date.now() < end;) {
      if (read < lines.length) return lines[read++]!;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
    throw new Error(`no line from the relay; got ${JSON.stringify(lines)}`);
  };
  return { child, lines, next, code };
}

/** Start, expect LISTEN from `runtime`, then prove the control channel starts at the right byte. */
async function expectRelay(r: Run, runtime: 'python3' | 'perl'): Promise<void> {
  const listen = parseListen(await r.next());
  if (!listen || !('pid' in listen)) throw new Error(`no LISTEN: ${JSON.stringify(r.lines)}`);
  pids.push(listen.pid);
  expect(listen.runtime).toBe(runtime);
  expect(listen.pid).not.toBe(r.child.pid);
  expect(readFileSync(`/proc/${listen.pid}/cmdline`, 'utf8')).toContain(runtime);
  r.child.stdin.write(PING + STATUS);
  expect(parseSimple(await r.next())).toBe('PONG');
  expect(parseStatus(await r.next())).toMatchObject({ clients: 0, target: undefined });
  r.child.stdin.write(QUIT);
  expect(parseSimple(await r.next())).toBe('BYE');
  expect(await r.code).toBe(0);
}

describe.skipIf(!haveBoth)(`the launch script${haveBoth ? '' : ' (skipped: needs python3 and perl)'}`, () => {
  it('runs python3 when it works, unmoved by modules in the current folder', async () => {
    const l = relayLaunch(spec(), programs);
    const bin = binWith('real', 'real');
    // sshd starts commands in the home folder, and python -c looks there first
    for (const m of ['socket', 'selectors', 'errno', 're'])
      writeFileSync(join(bin, `${m}.py`), 'raise SystemExit(66)\n', { flag: 'wx' });
    await expectRelay(run(l.command, l.stdin, bin, '/bin/sh', bin), 'python3');
  });

  it.each<[Fake, string]>([
    ['missing', '127'],
    ['noexec', '126'],
    ['old', '90 from the bootstrap'],
  ])('falls back to perl when python3 is %s (%s), with the stream intact', async (fake) => {
    const l = relayLaunch(spec(), programs);
    await expectRelay(run(l.command, l.stdin, binWith(fake, 'real')), 'perl');
  });

  it.skipIf(!PYTHON27)('falls back to perl from a real python 2.7, which says nothing', async () => {
    const l = relayLaunch(spec(), programs);
    const r = run(l.command, l.stdin, binWith({ path: PYTHON27! }, 'real'));
    let stderr = '';
    r.child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await expectRelay(r, 'perl');
    expect(stderr).toBe('');
  });

  it.skipIf(!PYTHON36)('runs the relay on a real python 3.6, the oldest it supports', async () => {
    const l = relayLaunch(spec(), programs);
    await expectRelay(run(l.command, l.stdin, binWith({ path: PYTHON36! }, 'real')), 'python3');
  });

  it('says what to install and exits 5 when neither runs', async () => {
    const l = relayLaunch(spec(), programs);
    const r = run(l.command, l.stdin, binWith('old', 'nomodule'));
    expect(await r.code).toBe(5);
    expect(r.lines).toEqual([
      'MOSHCTL-RELAY ERROR no relay runtime: neither python3 (>= 3.6) nor perl runs here; ' +
        'install python3 (apt install python3) or perl (the perl-base package)',
    ]);
    expect(parseListen(r.lines[0]!)).toEqual({ error: r.lines[0]!.replace('MOSHCTL-RELAY ERROR ', '') });
  });

  it('tries only the runtime asked for', async () => {
    const py = relayLaunch(spec({ runtime: 'python3' }), programs);
    const r = run(py.command, py.stdin, binWith('missing', 'real'));
    expect(await r.code).toBe(5);
    expect(r.lines[0]).toMatch(
      /^MOSHCTL-RELAY ERROR no relay runtime: python3 \(>= 3\.6\) does not run here/,
    );
    const pl = relayLaunch(spec({ runtime: 'perl' }), programs);
    await expectRelay(run(pl.command, pl.stdin, binWith('real', 'real')), 'perl');
    const none = run(pl.command, pl.stdin, binWith('real', 'noexec'));
    expect(await none.code).toBe(5);
    expect(none.lines[0]).toMatch(/perl does not run here; install it \(the perl-base package\)/);
  });

  const shells = ['bash', 'dash', 'zsh', 'fish'].filter((s) => which(s));
  it.each(shells)('works when the login shell is %s', async (shell) => {
    const l = relayLaunch(spec(), programs);
    await expectRelay(run(l.command, l.stdin, binWith('old', 'real'), which(shell)), 'perl');
  });

  it('hands every argument over unchanged, whatever the login shell', async () => {
    // A fake python3 that prints its argv: what the relay would have parsed.
    const bin = binWith('missing', 'missing');
    writeFileSync(join(bin, 'python3'), `#!/bin/sh\nshift 4\nfor a in "$@"; do echo "[$a]"; done\nexit 7\n`, {
      mode: 0o755,
      flag: 'wx',
    });
    const l = relayLaunch(
      spec({ listen: { from: 5, to: 6 }, to: { address: 'fe80::1', port: 2 } }),
      programs,
    );
    for (const shell of shells) {
      const r = run(l.command, l.stdin, bin, which(shell));
      expect(await r.code).toBe(7);
      expect(r.lines).toEqual(['[--ports]', '[5-6]', '[--idle-timeout]', '[30]', '[--to]', '[[fe80::1]:2]']);
    }
  });
});

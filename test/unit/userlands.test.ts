// Every remote script that asks "is this pid ours", run for real on each
// userland a host may have (test/support/userlands.ts): dash, bash and busybox
// ash with /proc; a BSD ps and a listing busybox ps without /proc; and hosts
// where nothing can see a pid, which must answer "unknown" and signal nothing.
// Against real processes started here, stopped by pid afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { targetCheckCommand, parseTargetCheck } from '../../src/doctor/remote.js';
import { relayLaunch } from '../../src/relay/launch.js';
import { forwarderLaunch } from '../../src/tcp/launch.js';
import {
  parseRelayAlive,
  parseRelayStop,
  relayAliveCommand,
  stopRelayCommand,
} from '../../src/relay/commands.js';
import {
  moshServerCommand,
  moshServerFailure,
  moshServerKeptCommand,
  stopKeeperCommand,
} from '../../src/remote/mosh-server.js';
import {
  aliveCommand,
  parseAlive,
  parseStop,
  PROC_SH,
  stopByPidCommand,
} from '../../src/remote/processes.js';
import { shellQuote } from '../../src/remote/shell.js';
import {
  endSshdCommand,
  ownSshdCommand,
  parseEndSshd,
  parseOwnSshd,
  withSessionReport,
} from '../../src/remote/sshd-session.js';
import { makeUserlands } from '../support/userlands.js';

const { userlands, cleanup } = makeUserlands();
const tmp = mkdtempSync(`${tmpdir()}/moshctl-userlands-test-`);
afterAll(() => {
  cleanup();
  rmSync(tmp, { recursive: true, force: true });
});

function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
}

function runs(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

async function gone(pid: number, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (runs(pid) && Date.now() < deadline) await sleep(50);
  return !runs(pid);
}

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) {
    if (c.pid && runs(c.pid)) {
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch {
        c.kill('SIGKILL');
      }
    }
  }
});

/** A process of its own group that runs `script` under /bin/sh, with `words` in its command line. */
function startProcess(script: string): number {
  const c = spawn('/bin/sh', ['-c', script], { detached: true, stdio: 'ignore' });
  c.on('error', () => undefined);
  started.push(c);
  if (!c.pid) throw new Error('could not start a process');
  return c.pid;
}

describe('the shell library', () => {
  it("travels through any login shell: one line, no `!` (csh), no `\\\\` or `\\'` (fish)", () => {
    expect(PROC_SH).not.toMatch(/\n/);
    expect(PROC_SH).not.toContain('!');
    expect(PROC_SH).not.toContain('\\\\');
    expect(PROC_SH).not.toContain("\\'");
  });
});

/** A stand-in ps starts node on every call: those userlands take seconds. */
const SLOW = 30_000;

describe.each(userlands)('on $label', (u) => {
  it.skipIf(u.skip)(
    'alive, stop and stop again: ours, another program, gone (or unknown when it cannot see)',
    async () => {
      const pid = startProcess('sleep 300; : a-sleeper');
      await sleep(100);
      const alive = (marker: string, started?: string): string | undefined =>
        parseAlive(u.run(aliveCommand([{ pid, marker, ...(started ? { started } : {}) }])).stdout).get(pid);
      const stop = (marker: string, started?: string): string | undefined =>
        parseStop(u.run(stopByPidCommand(pid, marker, started)).stdout);
      if (!u.sees) {
        expect(alive('a-sleeper')).toBe('unknown');
        expect(stop('a-sleeper')).toBe('unknown');
        expect(runs(pid)).toBe(true); // nothing was signalled
        return;
      }
      expect(alive('a-sleeper')).toBe('alive');
      expect(alive('mosh-server')).toBe('dead');
      expect(stop('mosh-server')).toBe('other');
      expect(runs(pid)).toBe(true);
      if (u.proc) {
        const real = startOf(pid);
        const wrong = String(Number(real) + 1);
        expect(alive('a-sleeper', wrong)).toBe('dead');
        expect(stop('a-sleeper', wrong)).toBe('other');
        expect(alive('a-sleeper', real)).toBe('alive');
        expect(stop('a-sleeper', real)).toBe('stopped');
      } else {
        // A start from a host with /proc cannot be checked here: never taken as a match.
        expect(alive('a-sleeper', '12345')).toBe('unknown');
        expect(stop('a-sleeper')).toBe('stopped');
      }
      expect(await gone(pid)).toBe(true);
      expect(stop('a-sleeper')).toBe('gone');
      expect(alive('a-sleeper')).toBe('dead');
    },
    SLOW,
  );

  it.skipIf(u.skip)(
    'a relay: stopped with its process group, then gone; or unknown and left running',
    async () => {
      const pid = startProcess('sleep 300 & sleep 300; : moshctl-relay --idle-timeout 60');
      await sleep(100);
      const stop = (): ReturnType<typeof parseRelayStop> =>
        parseRelayStop(u.run(stopRelayCommand(pid)).stdout);
      const alive = (): ReturnType<typeof parseRelayAlive> =>
        parseRelayAlive(u.run(relayAliveCommand(pid)).stdout);
      if (!u.sees) {
        expect(alive()).toBe('unknown');
        expect(stop()).toBe('unknown');
        expect(runs(pid)).toBe(true);
        return;
      }
      expect(alive()).toBe('alive');
      expect(stop()).toBe('stopped');
      expect(await gone(pid)).toBe(true);
      expect(alive()).toBe('dead');
    },
    SLOW,
  );

  it.skipIf(u.skip)(
    'a keeper that never answered is stopped with everything under it',
    async () => {
      const pid = startProcess(': MOSHCTL-SERVER KEEPER; sh -c "sleep 300; :" & sleep 300; :');
      await sleep(200);
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .map(Number);
      expect(children).toHaveLength(2);
      const out = u.run(stopKeeperCommand(pid)).stdout;
      if (!u.sees) {
        expect(parseStop(out)).toBe('unknown');
        expect(runs(pid)).toBe(true);
        return;
      }
      expect(parseStop(out)).toBe('stopped');
      for (const p of [pid, ...children]) expect(await gone(p)).toBe(true);
      // Another program under that pid is left alone.
      const other = startProcess('sleep 300; : not-a-keeper');
      await sleep(100);
      expect(parseStop(u.run(stopKeeperCommand(other)).stdout)).toBe('other');
      expect(runs(other)).toBe(true);
    },
    SLOW,
  );

  it.skipIf(u.skip)(
    'learns the process its login shell runs under, by start time, whether the login shell execs or forks',
    () => {
      for (const loginForks of [false, true]) {
        const r = u.run(ownSshdCommand(), { loginForks });
        const session = parseOwnSshd(r.stdout);
        // This test process stands for the server's session process: it started the login shell.
        if (u.proc) expect(session, r.stderr).toEqual({ pid: process.pid, started: startOf(process.pid) });
        else expect(r.stdout.trim(), r.stderr).toBe('MOSHCTL-SSHD none');
      }
    },
    SLOW,
  );

  it.skipIf(u.skip)(
    "set-up commands say the same session process first: a wrapped command, and mosh-server's keeper",
    () => {
      const expected = u.proc ? `MOSHCTL-SSHD ${process.pid} ${startOf(process.pid)}` : 'MOSHCTL-SSHD none';
      // A fake mosh-server that says what the real one says and detaches nothing.
      const fake = `${tmp}/fake-mosh-server`;
      writeFileSync(
        fake,
        "#!/bin/sh\necho 'MOSH CONNECT 60001 AAAAAAAAAAAAAAAAAAAAAA'\necho '[mosh-server detached, pid = 4194300]' >&2\n",
        { mode: 0o755 },
      );
      const keeper = moshServerKeptCommand({
        ports: { from: 60001, to: 60010 },
        networkTimeout: 60,
        signalTimeout: 60,
        locale: 'C.UTF-8',
        bind: { mode: 'any', why: 'test' },
        program: fake,
      });
      for (const loginForks of [false, true]) {
        const wrapped = u.run(
          withSessionReport(`/bin/sh -c ${shellQuote('echo "[$0]" "$@"')} name a 'b c'`),
          {
            loginForks,
          },
        );
        expect(wrapped.stdout, wrapped.stderr).toBe(`${expected}\n[name] a b c\n`);
        const kept = u.run(keeper, { loginForks }).stdout.split('\n');
        expect(kept.filter((l) => l.startsWith('MOSHCTL-SSHD '))).toEqual([expected]);
        // Before mosh-server's own lines, and before the line the step ends at.
        expect(kept.findIndex((l) => l.startsWith('MOSHCTL-SSHD '))).toBeLessThan(
          kept.findIndex((l) => l.startsWith('MOSH CONNECT ')),
        );
        expect(kept).toContain('MOSHCTL-SERVER EXIT 0');
      }
    },
    SLOW,
  );

  it.skipIf(u.skip)(
    'ends an old session only while it is that process, and never one it runs under (without /proc: never)',
    async () => {
      const pid = startProcess('sleep 300; : old-session');
      await sleep(100);
      const real = startOf(pid);
      const end = (sessions: { pid: number; started: string }[]): Map<number, string> =>
        parseEndSshd(u.run(endSshdCommand(sessions)).stdout);
      if (!u.proc) {
        // No exact start to check the pid against: nothing is ended, whatever else the host can see.
        expect(end([{ pid, started: real }])).toEqual(new Map([[pid, 'other']]));
        expect(runs(pid)).toBe(true);
        return;
      }
      // This test process is an ancestor of the command: its own session, or the listener above it.
      expect(end([{ pid: process.pid, started: startOf(process.pid) }])).toEqual(
        new Map([[process.pid, 'self']]),
      );
      expect(end([{ pid, started: String(Number(real) + 1) }])).toEqual(new Map([[pid, 'other']]));
      expect(runs(pid)).toBe(true);
      expect(end([{ pid, started: real }])).toEqual(new Map([[pid, 'ended']]));
      expect(await gone(pid)).toBe(true);
      expect(end([{ pid, started: real }])).toEqual(new Map([[pid, 'gone']]));
    },
    SLOW,
  );
});

describe.each(userlands.filter((u) => u.label.startsWith('busybox ash and applets only, /proc')))(
  'without python3, perl, tmux or mosh-server: $label',
  (u) => {
    it.skipIf(u.skip)('relay and forwarder launches say no runtime runs here', () => {
      const programs = { python3: 'x', perl: 'y' };
      const relay = relayLaunch(
        { runtime: 'auto', listen: { from: 61000, to: 61010 }, idleTimeout: 60 },
        programs,
      );
      const r = u.run(relay.command);
      expect(r.code).toBe(5);
      expect(r.stdout).toMatch(/^MOSHCTL-RELAY ERROR no relay runtime: neither python3/m);
      const fwd = forwarderLaunch(
        { runtime: 'auto', to: { address: '127.0.0.1', port: 60001 }, idleTimeout: 60 },
        programs,
      );
      const f = u.run(fwd.command);
      expect(f.code).toBe(5);
      expect(f.stdout).toMatch(/^MOSHCTL-FWD ERROR no forwarder runtime: neither python3/m);
    });

    it.skipIf(u.skip)("doctor's target check: no mosh-server on the PATH, no locale program", () => {
      // Where else it may be (a login shell's PATH, the usual places) is looked for too:
      // this machine's /usr/bin/mosh-server, which these userlands keep off the PATH only.
      expect(parseTargetCheck(u.run(targetCheckCommand('C.UTF-8')).stdout)).toMatchObject({
        server: { state: 'missing' },
        charmap: 'unknown',
      });
    });

    it.skipIf(u.skip)('mosh.session: tmux is refused before mosh-server starts', () => {
      const cmd = moshServerCommand({
        ports: { from: 60001, to: 60010 },
        networkTimeout: 60,
        signalTimeout: 60,
        locale: 'C.UTF-8',
        session: { program: 'tmux', name: 'main' },
        bind: { mode: 'any', why: 'test' },
        program: 'mosh-server',
      });
      // The login shell runs it: here, this userland's sh.
      const r = u.run(`/bin/sh -c ${shellQuote(cmd)}`);
      expect(r.code).not.toBe(0);
      expect(moshServerFailure(r.code, r.stderr).message).toBe(
        'tmux is not installed (or cannot run) there, and mosh.session: tmux runs the shell in it',
      );
    });
  },
);

// moshctl down and status from another process: the session's own terminal
// keeps running mosh-client while a second moshctl looks at it or stops it.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  records,
  settleNoSessionProcesses,
  typeAndCheck,
  waitForExit,
  waitForPrompt,
  type UpSession,
  useSessions,
  moshctlBeside,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

function recordOf(s: UpSession): {
  pid: number;
  relays: { pid: number; port: number }[];
  server: { pid: number };
} {
  const file = records(s)[0];
  if (!file) throw new Error('no session record');
  return JSON.parse(readFileSync(join(s.stateHome, 'moshctl', 'sessions', file), 'utf8')) as never;
}

/** Rewrites the session's record as another machine, or a later process with its pid, would leave it. */
function editRecord(s: UpSession, change: Record<string, unknown>): void {
  const file = join(s.stateHome, 'moshctl', 'sessions', records(s)[0] ?? '');
  writeFileSync(file, JSON.stringify({ ...(JSON.parse(readFileSync(file, 'utf8')) as object), ...change }));
}

describe.skipIf(reason).each(SSH_CLIENTS)('moshctl down and status (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  const sessions = useSessions(ctx);
  /** Processes a test started that are not moshctl's; stopped by pid after each test. */
  const others: number[] = [];
  afterEach(() => {
    for (const pid of others.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  /** A session whose moshctl was SIGKILLed (no teardown ran) and whose terminal, with mosh-client, is gone. */
  async function crashedSession() {
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    const rec = recordOf(s);
    process.kill(rec.pid, 'SIGKILL');
    await s.tmux.kill();
    return { s, rec };
  }

  it('status shows a running session with its processes alive, as text and JSON', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    const rec = recordOf(s);
    const text = await moshctlBeside(lab, s, ['status']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^target {2}target-\S+ {2}up \d+s {2}client alive$/m);
    expect(text.stdout).toContain('  route   local → bastion → target');
    expect(text.stdout).toContain(
      `  relay   bastion UDP ${rec.relays[0]?.port} (python3, pid ${rec.relays[0]?.pid}): alive`,
    );
    expect(text.stdout).toMatch(new RegExp(`server  target UDP \\d+ \\(pid ${rec.server.pid}\\): alive`));
    const json = JSON.parse((await moshctlBeside(lab, s, ['status', '--json'])).stdout) as {
      version: number;
      sessions: { name: string; server: { state: string }; relays: { state: string }[] }[];
    };
    expect(json.version).toBe(1);
    expect(json.sessions.map((x) => [x.name, x.server.state, x.relays.map((r) => r.state)])).toEqual([
      ['target', 'alive', ['alive']],
    ]);
    // A relay killed while up runs is healed: status shows it back, and how often.
    await lab.exec('bastion', ['kill', String(rec.relays[0]?.pid)]);
    let healed = '';
    for (let i = 0; i < 50 && !healed.includes('restarted 1×'); i++) {
      await new Promise((r) => setTimeout(r, 200));
      healed = (await moshctlBeside(lab, s, ['status'])).stdout;
    }
    expect(healed).toMatch(/relay {3}bastion UDP \d+ \(python3, pid \d+, restarted 1×\): alive/);
    expect(healed).not.toContain(`pid ${rec.relays[0]?.pid},`);
    // With up gone, nothing heals: the same check must see a dead relay as dead.
    const now = recordOf(s);
    process.kill(now.pid, 'SIGKILL');
    await lab.exec('bastion', ['kill', String(now.relays[0]?.pid)]);
    await new Promise((r) => setTimeout(r, 500));
    const dead = (await moshctlBeside(lab, s, ['status'])).stdout;
    expect(dead).toContain(`(python3, pid ${now.relays[0]?.pid}, restarted 1×): dead`);
    expect(dead).toMatch(/client crashed$/m);
    expect(dead).toMatch(
      new RegExp(`crashed its moshctl up is gone: pid ${now.pid} (no longer runs|has exited)`),
    );
    expect((await moshctlBeside(lab, s, ['down'])).code).toBe(0);
  });

  it('down from another terminal ends the session: its mosh-client exits and nothing is left', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    await typeAndCheck(lab, s);
    const r = await moshctlBeside(lab, s, ['down', 'target']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^target-\S+: stopped by its moshctl up process \(pid \d+\)$/m);
    expect(await waitForExit(s)).toBe(143);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
    const again = await moshctlBeside(lab, s, ['down', 'target']);
    expect(again).toMatchObject({ code: 0, stdout: 'no session named target to stop\n' });
  });

  it('down after moshctl was killed stops the server and the relay from the record', async () => {
    const { lab } = ctx;
    const { s, rec } = await crashedSession();
    const r = await moshctlBeside(lab, s, ['down']);
    expect(r.code, r.stderr).toBe(0);
    // Hosts are torn down concurrently, so the two may come in either order.
    expect(r.stdout).toMatch(/^target-\S+: stopped /m);
    expect(r.stdout).toMatch(/relay on bastion \(pid \d+, UDP \d+\) \(stopped\)/);
    // mosh-server may have begun to exit once its client's terminal was gone.
    expect(r.stdout).toMatch(
      new RegExp(`mosh-server on target \\(pid ${rec.server.pid}, UDP \\d+\\) \\((stopped|gone)\\)`),
    );
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
    expect((await moshctlBeside(lab, s, ['status'])).stdout).toBe('no sessions\n');
  });

  it('down goes on when a host is gone, keeps what it could not stop, and finishes on a second run', async () => {
    const { lab } = ctx;
    const { s, rec } = await crashedSession();
    // The target becomes unreachable: the relay on the bastion can still be stopped.
    await lab.dropShare('target', 100);
    try {
      // status still asks the bastion about its relay, and says the target cannot be reached.
      const st = await moshctlBeside(lab, s, ['status']);
      expect(st.stdout).toContain(`(python3, pid ${rec.relays[0]?.pid}): alive`);
      expect(st.stdout).toMatch(new RegExp(`server  target UDP \\d+ \\(pid ${rec.server.pid}\\): unknown`));
      expect(st.stdout).toMatch(/^ {2}target not reachable: /m);
      const r = await moshctlBeside(lab, s, ['down', '--all']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('not stopped: mosh-server on target');
      expect(r.stderr).toContain('run "moshctl down target" again');
      const left = recordOf(s);
      expect(left.relays).toEqual([]);
      expect(left.server.pid).toBe(rec.server.pid);
    } finally {
      await lab.clearDrops();
    }
    const again = await moshctlBeside(lab, s, ['down', '--all']);
    expect(again.code, again.stderr).toBe(0);
    expect(records(s)).toEqual([]);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
  });

  it('two sessions of the same name run at once; down NAME stops both', async () => {
    const { lab } = ctx;
    const a = await sessions.start(['up', 'target']);
    await waitForPrompt(a);
    // Same state directory: the records must not collide.
    const b = await sessions.start(['up', 'target'], { env: { XDG_STATE_HOME: a.stateHome } });
    await waitForPrompt(b);
    expect(records(a)).toHaveLength(2);
    await typeAndCheck(lab, a);
    await typeAndCheck(lab, b);
    const r = await moshctlBeside(lab, a, ['down', 'target']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/stopped by its moshctl up process/g)).toHaveLength(2);
    expect(records(a)).toEqual([]);
  });

  // The owner checks do not depend on the ssh client: defined once, under ssh2 (not
  // skipped under openssh, which would report two skips that are not gaps).
  if (sshClient !== 'ssh2') return;

  it('a session of another machine (shared home) is left alone by down --all, shown as on HOST, ended by --force', async () => {
    const { lab } = ctx;
    const { s, rec } = await crashedSession();
    editRecord(s, { machine: 'elsewhere.example' });
    const st = await moshctlBeside(lab, s, ['status']);
    expect(st.stdout).toMatch(/client on elsewhere\.example$/m);
    expect(st.stdout).not.toContain('crashed');
    const r = await moshctlBeside(lab, s, ['down', '--all']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `: left alone: its moshctl up runs on elsewhere.example (pid ${rec.pid}); "moshctl down target" there, or "moshctl down target --force" here, ends it`,
    );
    expect(records(s)).toHaveLength(1);
    expect((await moshctlBeside(lab, s, ['status'])).stdout).toContain(
      `(python3, pid ${rec.relays[0]?.pid}): alive`,
    );
    const forced = await moshctlBeside(lab, s, ['down', 'target', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/relay on bastion \(pid \d+, UDP \d+\) \(stopped\)/);
    expect(records(s)).toEqual([]);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
  });

  it('a pid that runs again but started at another time is not the up process: crashed, cleaned, never signalled', async () => {
    const { lab } = ctx;
    const { s } = await crashedSession();
    // Its command line even says moshctl: only the start time tells it from the up process.
    const other = spawn('sleep', ['300'], { argv0: 'moshctl-not-up', stdio: 'ignore' });
    const pid = other.pid;
    if (pid === undefined) throw new Error('could not start sleep');
    others.push(pid);
    editRecord(s, { pid });
    const st = await moshctlBeside(lab, s, ['status']);
    expect(st.stdout).toMatch(/client crashed$/m);
    expect(st.stdout).toContain(`pid ${pid} is another process now, started at another time`);
    const r = await moshctlBeside(lab, s, ['down']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('crashed: its moshctl up is gone');
    expect(r.stdout).toMatch(/^target-\S+: stopped /m);
    expect(records(s)).toEqual([]);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(other.exitCode ?? other.signalCode).toBeNull();
    expect(() => process.kill(pid, 0)).not.toThrow();
  });
});

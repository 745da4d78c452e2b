// However `up` is interrupted, nothing it started outlives it by more than a
// few seconds: Ctrl-C once and twice at each step, SIGTERM, SIGHUP (the
// terminal closed), an impatient double Ctrl-C at a random moment of set-up.
// Each case looks on every hop by pid (the sshd listeners aside) and in the
// client's namespace, at the state folder, and at `moshctl status`.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/index.js';
import {
  cmdline,
  hopProcesses,
  moshctlBeside,
  readRecord,
  records,
  stderrOf,
  typeAndCheck,
  waitForExit,
  waitForPrompt,
  waitForStderr,
  type RecordFile,
  type UpSession,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

/** How long anything moshctl started may outlive an interrupted `up` (the bound). */
const NOTHING_LEFT_WITHIN_MS = 30_000;

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return true;
  }
}

/** Every live process in the client's namespace: moshctl itself, a cleanup it left, ssh, mosh-client. */
async function clientProcesses(lab: Lab): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await lab.pidsIn('client')) {
    if (isZombie(pid)) continue;
    found.push(`client ${pid} ${cmdline(pid).slice(0, 160)}`);
  }
  return found;
}

/** What is left of a session: processes on every hop and on the client, and state records. */
async function leftovers(lab: Lab, s: UpSession): Promise<string[]> {
  return [
    ...(await hopProcesses(lab)).map((p) => p.slice(0, 200)),
    ...(await clientProcesses(lab)),
    ...records(s).map((f) => `record ${f}`),
  ];
}

/**
 * Nothing of the session within NOTHING_LEFT_WITHIN_MS: no process on any
 * hop, none in the client's namespace, no record; and `moshctl status` says
 * so. Returns how long it took.
 */
async function expectNothingLeft(lab: Lab, s: UpSession, why = ''): Promise<number> {
  const started = Date.now();
  let left: string[] = [];
  while (Date.now() - started < NOTHING_LEFT_WITHIN_MS) {
    left = await leftovers(lab, s);
    if (left.length === 0) break;
    await sleep(250);
  }
  const took = Date.now() - started;
  const context = `${why}\nstderr of up:\n${stderrOf(s)}`;
  // Killed by pid once seen, so one failing case does not spill into the next.
  for (const p of left) {
    const pid = Number(p.split(' ')[1]);
    if (pid > 1)
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
  }
  expect(left, context).toEqual([]);
  const status = await moshctlBeside(lab, s, ['status']);
  expect(status.code, status.stderr).toBe(0);
  expect(status.stdout, context).toBe('no sessions\n');
  return took;
}

/** The pid of the `up` running in `s` (from its record, written before the first step). */
async function upPid(s: UpSession): Promise<number> {
  return (await readRecord(s)).pid;
}

function parentOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[1] ?? 0);
  } catch {
    return 0;
  }
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

/** Waits until `pid` is gone (a hung-up `up` has no exit status to read: its terminal is gone). */
async function waitGone(pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (running(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still runs after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** What runs beside a held step (steps that do not depend on it go on), as the record shows it. */
const BESIDE: Record<string, (r: RecordFile) => boolean> = {
  connect: () => true,
  // The relay on the bastion starts while the server step waits, and the server while the relay waits.
  server: (r) => r.relays.length === 1,
  relay: (r) => r.server !== undefined,
  wire: (r) => r.server !== undefined && r.relays.length === 1,
};

const STEPS = ['connect', 'relay', 'server', 'wire'] as const;

describe.skipIf(reason).each(SSH_CLIENTS)('interrupting up leaves nothing (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  const { start } = useSessions(ctx);

  /** up, held before `step`, with what runs beside it recorded. */
  async function heldBefore(step: (typeof STEPS)[number]): Promise<UpSession> {
    const s = await start(['up', 'target'], { env: { MOSHCTL_TEST_HOLD: step } });
    await waitForStderr(s, `holding before step ${step}`);
    const want = BESIDE[step] ?? (() => true);
    for (let i = 0; i < 100 && !want(await readRecord(s)); i++) await sleep(100);
    expect(want(await readRecord(s)), stderrOf(s)).toBe(true);
    return s;
  }

  // The main cases under both clients; the rest under the built-in one (the
  // ssh client changes how hops are reached, not how signals are handled).
  const both = sshClient === 'ssh2' || sshClient === 'openssh';
  const ssh2Only = sshClient === 'ssh2';

  // Defined under the built-in client only, rather than reported as skipped under openssh.
  if (ssh2Only)
    describe('Ctrl-C once', () => {
      it.each(STEPS)(
        'before %s: exit 130, nothing left on any hop, no record, status clean',
        async (step) => {
          const { lab } = ctx;
          const s = await heldBefore(step);
          await s.tmux.sendKey('C-c');
          const code = await waitForExit(s, NOTHING_LEFT_WITHIN_MS);
          expect(code, stderrOf(s)).toBe(130);
          await expectNothingLeft(lab, s);
        },
      );
    });

  describe.runIf(both)('Ctrl-C twice', () => {
    it.each(STEPS)(
      'before %s: exit 130 at once, and within 30 s nothing is left on any hop, no record, status clean',
      async (step) => {
        const { lab } = ctx;
        const s = await heldBefore(step);
        // As fast as a person presses twice: the second comes while teardown runs.
        await s.tmux.sendKey('C-c');
        await s.tmux.sendKey('C-c');
        const code = await waitForExit(s, 5_000);
        expect(code, stderrOf(s)).toBe(130);
        await expectNothingLeft(lab, s);
      },
    );

    // The issue's own case: an impatient double Ctrl-C 0.5-0.9 s into up, when
    // relays and mosh-server are being started and their pids are not yet known.
    it.each([500, 600, 700, 800, 900])(
      '%i ms into up, the second 150 ms later: nothing is left on any hop within 30 s, no record, status clean',
      async (ms) => {
        const { lab } = ctx;
        const s = await start(['up', 'target']);
        await sleep(ms);
        await s.tmux.sendKey('C-c');
        await sleep(150);
        await s.tmux.sendKey('C-c');
        // Set-up may have finished first: then Ctrl-C went to the remote shell, and `exit` ends it.
        let code: number;
        try {
          code = await waitForExit(s, 5_000);
        } catch {
          await waitForPrompt(s);
          await s.tmux.sendKeys('exit');
          await s.tmux.sendEnter();
          code = await waitForExit(s);
        }
        expect([0, 130], stderrOf(s)).toContain(code);
        await expectNothingLeft(lab, s, `interrupted ${ms} ms in, exit ${code}`);
      },
    );
  });

  describe.runIf(both)('a third signal, and the terminal closed after the second', () => {
    it('Ctrl-C three times while the first hop does not answer, then the terminal closed: the cleanup finishes once it answers', async () => {
      const { lab } = ctx;
      const s = await heldBefore('wire');
      const pid = await upPid(s);
      // Packets to the bastion vanish: the teardown waits, so the second Ctrl-C surely comes during it.
      await lab.linkDown('client');
      try {
        await s.tmux.sendKey('C-c');
        await sleep(300);
        await s.tmux.sendKey('C-c');
        await waitGone(pid, 5_000);
        const said = /the teardown goes on in the background \(pid (\d+)\)/.exec(stderrOf(s));
        expect(said, stderrOf(s)).not.toBeNull();
        const cleanup = Number(said?.[1]);
        // A third Ctrl-C and the terminal's end reach the shell and tmux, not the cleanup.
        await s.tmux.sendKey('C-c');
        execFileSync('tmux', ['-S', s.tmux.socket, 'kill-server'], { stdio: 'ignore' });
        await sleep(500);
        expect(running(cleanup)).toBe(true);
      } finally {
        await lab.linkUp('client');
      }
      await expectNothingLeft(lab, s);
    });
  });

  describe.runIf(both)('SIGTERM', () => {
    it('once, before wire: exit 143, nothing left', async () => {
      const { lab } = ctx;
      const s = await heldBefore('wire');
      process.kill(await upPid(s), 'SIGTERM');
      expect(await waitForExit(s, NOTHING_LEFT_WITHIN_MS), stderrOf(s)).toBe(143);
      await expectNothingLeft(lab, s);
    });

    it('twice, before wire: exit 143 at once, and within 30 s nothing is left', async () => {
      const { lab } = ctx;
      const s = await heldBefore('wire');
      const pid = await upPid(s);
      process.kill(pid, 'SIGTERM');
      await sleep(50);
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // its teardown was quicker than that: nothing to stop waiting for
      }
      expect(await waitForExit(s, 5_000), stderrOf(s)).toBe(143);
      await expectNothingLeft(lab, s);
    });

    it('while mosh-client runs: exit 143, and the shell that kept mosh-server ends within 2 s of it', async () => {
      const { lab } = ctx;
      const s = await start(['up', 'target']);
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      const server = (await readRecord(s)).server?.pid ?? 0;
      expect(server).toBeGreaterThan(1);
      // The keeper: the shell on the target whose command line carries its mark
      // (the subshell reading its channel is a fork of it, with the same command line).
      const marked = (p: number): boolean => cmdline(p).includes('MOSHCTL-SERVER KEEPER');
      const keepers = (await lab.pidsIn('target')).filter((p) => marked(p) && !marked(parentOf(p)));
      expect(keepers).toHaveLength(1);
      const keeper = keepers[0] ?? 0;
      process.kill(await upPid(s), 'SIGTERM');
      expect(await waitForExit(s), stderrOf(s)).toBe(143);
      const watchFrom = Date.now();
      let serverGone: number | undefined;
      let keeperGone: number | undefined;
      while (Date.now() - watchFrom < NOTHING_LEFT_WITHIN_MS && (!serverGone || !keeperGone)) {
        if (!serverGone && !running(server)) serverGone = Date.now();
        if (!keeperGone && !running(keeper)) keeperGone = Date.now();
        await sleep(50);
      }
      expect(serverGone, 'mosh-server still runs').toBeDefined();
      expect(keeperGone, 'its keeper shell still runs').toBeDefined();
      expect((keeperGone ?? 0) - (serverGone ?? 0)).toBeLessThan(2_000);
      await expectNothingLeft(lab, s);
    });
  });

  describe.runIf(both)('SIGHUP (the terminal closed: tmux killed)', () => {
    /** Closes the session's terminal as a user closing the window would: tmux's server goes, the pane is hung up. */
    function closeTerminal(s: UpSession): void {
      execFileSync('tmux', ['-S', s.tmux.socket, 'kill-server'], { stdio: 'ignore' });
    }

    it('before wire: up tears down by itself, nothing left', async () => {
      const { lab } = ctx;
      const s = await heldBefore('wire');
      const pid = await upPid(s);
      closeTerminal(s);
      await waitGone(pid);
      await expectNothingLeft(lab, s);
    });

    it('while mosh-client runs: nothing left', async () => {
      const { lab } = ctx;
      const s = await start(['up', 'target']);
      await waitForPrompt(s);
      const pid = await upPid(s);
      closeTerminal(s);
      await waitGone(pid);
      await expectNothingLeft(lab, s);
    });

    it('Ctrl-C, then the terminal closed while teardown runs: nothing left', async () => {
      const { lab } = ctx;
      const s = await heldBefore('wire');
      const pid = await upPid(s);
      await s.tmux.sendKey('C-c');
      closeTerminal(s);
      await waitGone(pid);
      await expectNothingLeft(lab, s);
    });
  });
});

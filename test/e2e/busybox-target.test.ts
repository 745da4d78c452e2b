// A target with a busybox userland (Alpine, OpenWrt, minimal containers):
// busybox ash as its shell and /bin/sh, busybox's ps (no -p), and no bash,
// python3 or perl (LabOptions.busybox). Before, status called its running
// mosh-server dead and down said "gone" and left it running.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/index.js';
import {
  exitSession,
  hopProcesses,
  killUpAndClient,
  moshctlBeside,
  readRecord,
  records,
  sessionProcesses,
  settleNoSessionProcesses,
  stderrOf,
  waitForExit,
  waitForPrompt,
  type UpSession,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, useLab } from './support.js';

const reason =
  e2eSkipReason() ??
  (existsSync('/usr/bin/busybox') ? undefined : 'busybox is not installed (scripts/setup.sh)');

let typed = 0;

/** Types a command whose output only the target's busybox shell can write, and waits for the file. */
async function typeOnTarget(lab: Lab, s: UpSession): Promise<void> {
  const file = join(lab.dir, `bb-typed-${++typed}`);
  // busybox's own ip applet: the target's address proves where it ran.
  await s.tmux.sendKeys(`ip -4 addr > ${file}`);
  await s.tmux.sendEnter();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (got.includes(lab.hosts.target.sshAddress)) return;
    if (Date.now() > deadline)
      throw new Error(`typing had no effect on the target; screen:\n${await s.tmux.capture()}`);
    await sleep(100);
  }
}

/** Whether `pid` runs in the target's namespace (asked from outside, with the machine's own tools). */
async function runsOnTarget(lab: Lab, pid: number): Promise<boolean> {
  return (await lab.pidsIn('target')).includes(pid);
}

describe.skipIf(reason)('a busybox target', () => {
  const ctx = useLab({ busybox: ['target'] });
  const sessions = useSessions(ctx);

  it('its sessions see busybox only: ps without -p, no python3, perl or bash, ash as /bin/sh', async () => {
    const { lab } = ctx;
    const script =
      'ps -o args= -p 1; echo "ps=$?"; echo "found=[$(command -v python3 perl bash tmux screen)]"; ' +
      'for p in /usr/bin/python3 /usr/bin/perl /bin/bash; do "$p" -c : 2>/dev/null; echo "$p=$?"; done; ' +
      '/bin/sh --help 2>&1 | head -1; mosh-server --version 2>&1 | head -1';
    const r = await lab.exec('client', lab.sshArgv('target', [script]));
    expect(r.stdout).toContain('ps=1');
    expect(r.stderr).toMatch(/ps: invalid option -- 'p'/);
    expect(r.stdout).toContain('found=[]');
    for (const p of ['/usr/bin/python3', '/usr/bin/perl', '/bin/bash'])
      expect(r.stdout).toContain(`${p}=126`);
    expect(r.stdout).toMatch(/^BusyBox v1\./m);
    expect(r.stdout).toMatch(/^mosh-server \(mosh /m);
  });

  it('up works, status says the server runs, exit stops it and leaves nothing', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    await typeOnTarget(lab, s);
    const rec = await readRecord(s);
    const server = rec.server?.pid ?? 0;
    expect(await runsOnTarget(lab, server)).toBe(true);
    const st = await moshctlBeside(lab, s, ['status']);
    expect(st.code, st.stderr).toBe(0);
    expect(st.stdout).toMatch(new RegExp(`server  target UDP \\d+ \\(pid ${server}\\): alive`));
    expect(st.stdout).toMatch(/relay {3}bastion UDP \d+ \(python3, pid \d+\): alive/);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('down after moshctl was killed stops mosh-server on the target by pid, and nothing is left', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    const rec = await readRecord(s);
    const server = rec.server?.pid ?? 0;
    // No teardown runs: the record is all down has. mosh-client too is killed
    // without a word (it says goodbye to mosh-server on SIGHUP, which ends it).
    const clients = (await sessionProcesses(lab)).filter((p) => /^client \d+ mosh-client /.test(p));
    expect(clients).toHaveLength(1);
    killUpAndClient(rec.pid, Number(clients[0]?.split(' ')[1]));
    await s.tmux.kill();
    const st = await moshctlBeside(lab, s, ['status']);
    expect(st.stdout).toMatch(/client crashed$/m);
    expect(st.stdout).toMatch(new RegExp(`server  target UDP \\d+ \\(pid ${server}\\): alive`));
    const r = await moshctlBeside(lab, s, ['down']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`mosh-server on target \\(pid ${server}, UDP \\d+\\) \\(stopped\\)`));
    const deadline = Date.now() + 10_000;
    while ((await runsOnTarget(lab, server)) && Date.now() < deadline) await sleep(100);
    expect(await runsOnTarget(lab, server)).toBe(false);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect((await hopProcesses(lab)).filter((p) => p.startsWith('target '))).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('mosh.session: tmux is refused clearly where tmux is missing, and leaves nothing', async () => {
    const { lab } = ctx;
    const text = readFileSync(lab.configFile, 'utf8');
    const config = join(lab.dir, 'busybox-tmux.yaml');
    const changed = text.replace(/^( {2}target:\n(?: {4}.*\n)*)/m, '$1    mosh: {session: tmux}\n');
    expect(changed).not.toBe(text);
    writeFileSync(config, changed, { mode: 0o600 });
    const s = await sessions.start(['up', 'target'], { config });
    expect(await waitForExit(s)).toBe(1);
    expect(stderrOf(s)).toContain(
      'moshctl: start mosh-server on target: tmux is not installed (or cannot run) there, and mosh.session: tmux runs the shell in it\n' +
        '  hint: install tmux on that host (Debian/Ubuntu: apt install tmux; Fedora: dnf install tmux), or set mosh.session: none for it',
    );
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

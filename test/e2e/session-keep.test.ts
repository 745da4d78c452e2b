// mosh.session in the lab: mosh cannot reattach a new client to a running
// mosh-server (mosh #394), so with `session: tmux` (or screen) the shell runs
// in a session that outlives a lost client, and the next `up` gets that very
// shell back. Each lab host has its own tmux and screen socket folders
// (src/lab/multiplexers.ts); what a test leaves there is found and stopped by pid.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  childrenOf,
  multiplexerServers,
  realProgramPath,
  startAgent,
  stopMultiplexerServers,
  type Lab,
} from '../../src/lab/index.js';
import {
  cmdline,
  exitSession,
  killUpAndClient,
  moshctlBeside,
  records,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForExit,
  waitForPrompt,
  type UpSession,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, useLab } from './support.js';

const reason = e2eSkipReason();
// setup.sh installs screen; the support check does not ask for it, so a machine without it skips that test only.
const noScreen =
  spawnSync('sh', ['-c', 'command -v screen'], { stdio: 'ignore' }).status === 0
    ? undefined
    : 'screen is not installed (apt install screen)';

let configs = 0;

/** The lab's config with `mosh.session` set for every host, or (`perHost`) for the target only. */
function sessionConfig(lab: Lab, session: 'tmux' | 'screen', perHost = false): string {
  const text = readFileSync(lab.configFile, 'utf8');
  const changed = perHost
    ? text.replace(/^( {2}target:\n(?: {4}.*\n)*)/m, `$1    mosh: {session: ${session}}\n`)
    : text.replace(/^mosh:\n/m, `mosh:\n  session: ${session}\n`);
  expect(changed).not.toBe(text);
  const file = join(lab.dir, `session-${++configs}.yaml`);
  writeFileSync(file, changed, { mode: 0o600 });
  return file;
}

function recordOf(s: UpSession): { pid: number; server: { pid: number } } {
  const file = records(s)[0];
  if (!file) throw new Error('no session record');
  return JSON.parse(readFileSync(join(s.stateHome, 'moshctl', 'sessions', file), 'utf8')) as never;
}

let proofs = 0;

/**
 * Types `command` into the session with `> FILE` appended and returns what the
 * shell on the target wrote there: proof of which shell (its $$, a variable)
 * got the keystrokes.
 */
async function typeAndRead(lab: Lab, s: UpSession, command: string, timeoutMs = 30_000): Promise<string> {
  const file = join(lab.dir, `kept-${++proofs}`);
  await s.tmux.sendKeys(`${command} > ${file}`);
  await s.tmux.sendEnter();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (text.endsWith('\n')) return text.trim();
    if (Date.now() > deadline) throw new Error(`no proof in ${file}; screen:\n${await s.tmux.capture()}`);
    await sleep(100);
  }
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
  return true;
}

function alive(pid: number): boolean {
  return cmdline(pid) !== '';
}

describe.skipIf(reason)('mosh.session keeps the shell for the next up', () => {
  const ctx = useLab();
  // Whatever a failed test left: tmux and screen servers on the target, by pid.
  const sessions = useSessions(ctx, async () => void (await stopMultiplexerServers(ctx.lab, 'target')));

  it('tmux: after the laptop died (moshctl and mosh-client SIGKILLed), up gets the same shell back', async () => {
    const { lab } = ctx;
    const config = sessionConfig(lab, 'tmux');
    const first = await sessions.start(['up', 'target'], { config });
    await waitForPrompt(first);
    // A shell variable and the shell's pid: a file on the target would survive any shell.
    const before = await typeAndRead(lab, first, 'MARK=$((4321*3)); echo "$MARK $$ $TMUX"');
    const tmuxSocket = join(lab.dir, 'sockets', 'target', 'tmux', 'tmux-0', 'default');
    expect(before).toMatch(new RegExp(`^12963 \\d+ ${tmuxSocket},\\d+,0$`));
    const servers = await multiplexerServers(lab, 'target');
    expect(servers.map((s) => s.program)).toEqual(['tmux']);

    // The laptop dies: neither moshctl nor mosh-client gets to do anything.
    const rec = recordOf(first);
    const client = childrenOf(rec.pid).find((p) => cmdline(p).includes('mosh-client'));
    expect(client).toBeDefined();
    killUpAndClient(rec.pid, client ?? 0);
    expect(await waitForExit(first)).toBe(137);
    expect(alive(rec.server.pid)).toBe(true); // mosh #394: this server will never take a new client

    const second = await sessions.start(['up', 'target'], { config });
    await waitForPrompt(second);
    expect(await typeAndRead(lab, second, 'echo "$MARK $$ $TMUX"')).toBe(before);
    expect((await multiplexerServers(lab, 'target')).map((s) => s.pid)).toEqual(servers.map((s) => s.pid));
    // tmux detached the old mosh-server's client (-D), so that server ended by itself.
    expect(await eventually(() => Promise.resolve(!alive(rec.server.pid)), 45_000)).toBe(true);

    // The dead laptop's session: its relay is still up; down stops it (and finds the server gone).
    const downFirst = await moshctlBeside(lab, first, ['down', 'target'], config);
    expect(downFirst.code, downFirst.stderr).toBe(0);
    expect(records(first)).toEqual([]);
    // down ends mosh-server and moshctl, not the kept session: that is the point of it.
    const downSecond = await moshctlBeside(lab, second, ['down', 'target'], config);
    expect(downSecond.code, downSecond.stderr).toBe(0);
    expect(await waitForExit(second)).toBe(143);
    expect(records(second)).toEqual([]);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect((await multiplexerServers(lab, 'target')).map((s) => s.pid)).toEqual(servers.map((s) => s.pid));

    // The test's own cleanup, by pid: the tmux server it made the target start.
    expect((await stopMultiplexerServers(lab, 'target')).map((s) => s.pid)).toEqual(
      servers.map((s) => s.pid),
    );
    expect(await multiplexerServers(lab, 'target')).toEqual([]);
  });

  it('tmux with -A: the reattached shell keeps its SSH_AUTH_SOCK, and it answers again after the next up', async () => {
    const { lab } = ctx;
    const config = sessionConfig(lab, 'tmux');
    const agent = await startAgent(lab);
    try {
      const first = await sessions.start(['up', 'target', '-A'], { config, env: agent.env });
      await waitForPrompt(first);
      const probe = `echo "$MARK $SSH_AUTH_SOCK $(ssh-add -l 2>/dev/null | grep -c '${agent.fingerprint}')"`;
      const before = await typeAndRead(lab, first, `MARK=$((11*13)); ${probe}`);
      expect(before).toMatch(/^143 \/\S+\/\.moshctl\/agent\/target\.sock 1$/);
      // Only mosh-client dies: moshctl tears down (the link goes), tmux keeps the shell.
      const rec = recordOf(first);
      process.kill(childrenOf(rec.pid).find((p) => cmdline(p).includes('mosh-client')) ?? 0, 'SIGKILL');
      await waitForExit(first);
      expect(records(first)).toEqual([]);
      const second = await sessions.start(['up', 'target', '-A'], { config, env: agent.env });
      await waitForPrompt(second);
      // The same shell, the same path, and an agent behind it again.
      expect(await typeAndRead(lab, second, probe)).toBe(before);
      expect(await exitSession(second)).toBe(0);
      expect(
        await eventually(async () => (await multiplexerServers(lab, 'target')).length === 0, 10_000),
      ).toBe(true);
    } finally {
      await agent.stop();
    }
  });

  it('tmux with a command: it runs in a new session, and not when the session already exists', async () => {
    const { lab } = ctx;
    const config = sessionConfig(lab, 'tmux');
    const ran = join(lab.dir, 'command-ran');
    // A new session: the command runs in it, and the session ends with it.
    const once = await sessions.start(['up', 'target', '--', 'sh', '-c', `echo "$TMUX" > ${ran}; sleep 1`], {
      config,
    });
    expect(await waitForExit(once)).toBe(0);
    expect(readFileSync(ran, 'utf8')).toContain(join(lab.dir, 'sockets', 'target', 'tmux'));
    expect(await eventually(async () => (await multiplexerServers(lab, 'target')).length === 0, 10_000)).toBe(
      true,
    );

    // An existing session (its mosh-client lost, so moshctl tore down): attached, the command does not run.
    const shell = await sessions.start(['up', 'target'], { config });
    await waitForPrompt(shell);
    const before = await typeAndRead(lab, shell, 'MARK=$((7*6)); echo "$MARK $$"');
    const rec = recordOf(shell);
    process.kill(childrenOf(rec.pid).find((p) => cmdline(p).includes('mosh-client')) ?? 0, 'SIGKILL');
    await waitForExit(shell);
    const skipped = join(lab.dir, 'command-skipped');
    const again = await sessions.start(['up', 'target', '--', 'sh', '-c', `echo ran > ${skipped}`], {
      config,
    });
    await waitForPrompt(again);
    expect(await typeAndRead(lab, again, 'echo "$MARK $$"')).toBe(before);
    expect(existsSync(skipped)).toBe(false);
    expect(await exitSession(again)).toBe(0);
    expect(await eventually(async () => (await multiplexerServers(lab, 'target')).length === 0, 10_000)).toBe(
      true,
    );
  });

  it.skipIf(noScreen)(
    'screen (set for the target only): a lost mosh-client, then up again, same shell; exit ends it all',
    async () => {
      const { lab } = ctx;
      const config = sessionConfig(lab, 'screen', true);
      const first = await sessions.start(['up', 'target'], { config });
      await waitForPrompt(first);
      const before = await typeAndRead(lab, first, 'MARK=$((1234*5)); echo "$MARK $$ $STY"');
      expect(before).toMatch(/^6170 \d+ \d+\.moshctl-target=$/);

      // Only mosh-client dies: moshctl tears down as usual, and screen detaches when mosh-server goes.
      const rec = recordOf(first);
      const client = childrenOf(rec.pid).find((p) => cmdline(p).includes('mosh-client'));
      process.kill(client ?? 0, 'SIGKILL');
      await waitForExit(first);
      expect(records(first)).toEqual([]);
      expect(await settleNoSessionProcesses(lab)).toEqual([]);
      expect((await multiplexerServers(lab, 'target')).map((s) => s.program)).toEqual(['screen']);

      const second = await sessions.start(['up', 'target'], { config });
      await waitForPrompt(second);
      expect(await typeAndRead(lab, second, 'echo "$MARK $$ $STY"')).toBe(before);
      // `exit` ends the shell, so the screen session, so mosh-server, so moshctl.
      expect(await exitSession(second)).toBe(0);
      expect(await settleNoSessionProcesses(lab)).toEqual([]);
      expect(
        await eventually(async () => (await multiplexerServers(lab, 'target')).length === 0, 10_000),
      ).toBe(true);
      expect(stderrOf(second)).toMatch(/session target-\S+ ended; stopped 2 process\(es\)/);
    },
  );
});

describe.skipIf(reason)('mosh.session: tmux on a target where tmux cannot run', () => {
  // The real binary, bind-mounted over with /dev/null for the target's sshd only.
  const ctx = useLab({ hide: { target: [reason ? '/usr/bin/tmux' : realProgramPath('tmux')] } });
  const { start } = useSessions(ctx, async () => void (await stopMultiplexerServers(ctx.lab, 'target')));

  it('up exits 1 before mosh-server starts, says to install tmux or set session none, and leaves nothing', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'target'], { config: sessionConfig(lab, 'tmux') });
    expect(await waitForExit(s)).toBe(1);
    const err = stderrOf(s);
    expect(err).toContain(
      'moshctl: start mosh-server on target: tmux is not installed (or cannot run) there, and mosh.session: tmux runs the shell in it\n' +
        '  hint: install tmux on that host (Debian/Ubuntu: apt install tmux; Fedora: dnf install tmux), or set mosh.session: none for it',
    );
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
    expect(await multiplexerServers(lab, 'target')).toEqual([]);

    // Positive twin: the same target without mosh.session.
    const ok = await start(['up', 'target']);
    await waitForPrompt(ok);
    await typeAndCheck(lab, ok);
    expect(await exitSession(ok)).toBe(0);
  });
});

// moshctl up through one bastion, in the lab, as a person uses it.
import { describe, expect, it } from 'vitest';
import {
  exitSession,
  records,
  sessionProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForExit,
  waitForPrompt,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

describe.skipIf(reason).each(SSH_CLIENTS)('moshctl up through one bastion (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  const sessions = useSessions(ctx);

  it('opens a session whose keystrokes run on the target, and tears everything down on exit', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    expect(records(s)).toHaveLength(1);
    const running = await sessionProcesses(lab);
    expect(running.filter((p) => /^target \d+ mosh-server /.test(p))).toHaveLength(1);
    // The relay itself (python3 or perl), under the /bin/sh that launched it and holds its channel.
    const relays = running.filter((p) => p.startsWith('bastion ') && p.includes('--idle-timeout'));
    expect(relays.filter((p) => !/^bastion \d+ \/bin\/sh /.test(p))).toHaveLength(1);
    expect(running.filter((p) => p.startsWith('client ') && p.includes('mosh-client'))).toHaveLength(1);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
    expect(stderrOf(s)).toMatch(/session target-\S+ ended; stopped 2 process\(es\)/);
  });

  it("runs a command instead of the login shell and exits with the client's code", async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--', 'sh', '-c', 'ip netns identify; sleep 2']);
    await s.tmux.waitFor(lab.hosts.target.ns, 30_000);
    expect(await waitForExit(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
  });

  it('is plain mosh to a host without via: no relay anywhere', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'bastion']);
    await waitForPrompt(s);
    const running = await sessionProcesses(lab);
    expect(running.filter((p) => p.includes('--idle-timeout') || p.includes('moshctl-relay'))).toEqual([]);
    expect(running.filter((p) => /^bastion \d+ mosh-server /.test(p))).toHaveLength(1);
    await typeAndCheck(lab, s, 30_000, 'bastion');
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(stderrOf(s)).toMatch(/stopped 1 process\(es\)/);
  });
});

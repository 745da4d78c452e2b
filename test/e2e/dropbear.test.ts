// A bastion and a target running Dropbear (Debian's dropbear-bin) instead of
// OpenSSH's sshd, as routers, appliances and small images do, under both ssh
// clients. Each Dropbear connection is a fork of the listener with the same
// command line, so after a roam the old connection's process cannot be told by
// its title: moshctl learns it as the parent of its login shell, and ends it
// over the new connection, leaving the listener alone.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { HostName, Lab } from '../../src/lab/index.js';
import {
  cmdline,
  exitSession,
  records,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForPrompt,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason =
  e2eSkipReason() ??
  (existsSync('/usr/sbin/dropbear')
    ? undefined
    : 'dropbear is not installed (dropbear-bin; scripts/setup.sh)');

/** Dropbear's per-connection processes on `host`: every dropbear there but the listener. */
async function connections(lab: Lab, host: HostName): Promise<number[]> {
  const listener = lab.serverPid(host);
  const pids = await lab.pidsIn(host);
  return pids.filter((p) => p !== listener && cmdline(p).startsWith('/usr/sbin/dropbear '));
}

/** Waits until `pred` holds; false when it did not within `ms`. */
async function eventually(pred: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await pred()) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}

describe.skipIf(reason).each(SSH_CLIENTS)('Dropbear on the bastion and the target (%s)', (sshClient) => {
  const ctx = useLab({ dropbear: ['bastion', 'target'], sshClient });
  const sessions = useSessions(ctx, async () => {
    await ctx.lab.linkUp('client');
  });

  it('a session works and survives a roam; the dead connection is ended on both hosts, the listeners are not', async () => {
    const { lab } = ctx;
    const listeners = { bastion: lab.serverPid('bastion'), target: lab.serverPid('target') };
    expect(cmdline(listeners.bastion)).toMatch(/^\/usr\/sbin\/dropbear -F /);
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    await typeAndCheck(lab, s);
    const before = { bastion: await connections(lab, 'bastion'), target: await connections(lab, 'target') };
    expect(before.bastion.length, stderrOf(s)).toBeGreaterThan(0);
    expect(before.target.length, stderrOf(s)).toBeGreaterThan(0);

    await lab.roam();
    await typeAndCheck(lab, s, 30_000);
    // Over the new connections, the processes of the old ones are ended (they never heard a FIN).
    for (const host of ['bastion', 'target'] as const) {
      const ended = await eventually(
        async () => (await connections(lab, host)).every((p) => !before[host].includes(p)),
        20_000,
      );
      expect(ended, `${host}: ${(await connections(lab, host)).join(' ')}\n${stderrOf(s)}`).toBe(true);
    }
    expect(lab.serverPid('bastion')).toBe(listeners.bastion);
    expect((await lab.pidsIn('bastion')).includes(listeners.bastion)).toBe(true);
    expect((await lab.pidsIn('target')).includes(listeners.target)).toBe(true);

    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
    // Nothing but the listeners is left on either host: no Dropbear process of a dead connection.
    const listener = (line: string): boolean => Object.values(listeners).includes(Number(line.split(' ')[1]));
    expect(await settleNoHopProcesses(lab, 15_000, listener), stderrOf(s)).toEqual([]);
  });
});

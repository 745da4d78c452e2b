// mosh carried inside the ssh chain (--transport tcp) where UDP cannot pass:
// UDP between the client and the first hop is dropped (nftables), the session
// works through the forwarder on the target, survives a client address change
// and a 15 s outage, and leaves nothing on any host; and a jump-only bastion
// (ForceCommand: it runs nothing for the user) carries it too.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/index.js';
import {
  exitSession,
  records,
  sessionProcesses,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  useSessions,
  waitForExit,
  waitForPrompt,
} from './moshctl.js';
import { e2eSkipReason, useLab } from './support.js';

const reason = e2eSkipReason();
const RECOVERY_MS = 30_000;
const OUTAGE_MS = 15_000;

function udpBlocked(ctx: { readonly lab: Lab }): () => Promise<void> {
  return async () => {
    await ctx.lab.linkUp('client');
    await ctx.lab.clearDrops();
  };
}

describe.skipIf(reason)('tcp transport where UDP is dropped', () => {
  const ctx = useLab({});
  const sessions = useSessions(ctx, udpBlocked(ctx));

  it('works through a bastion that passes no UDP, survives a roam and a 15 s outage, and leaves nothing', async () => {
    const { lab } = ctx;
    await lab.blockUdp('client', true);
    const s = await sessions.start(['up', 'target', '--transport', 'tcp']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    const running = await sessionProcesses(lab);
    // No relay anywhere: the bastion only forwards the ssh chain.
    expect(
      running.filter((p) => p.startsWith('bastion ')),
      running.join('\n'),
    ).toEqual([]);

    await lab.roam();
    await typeAndCheck(lab, s, RECOVERY_MS);

    await lab.linkDown('client');
    await sleep(OUTAGE_MS);
    await lab.linkUp('client');
    await typeAndCheck(lab, s, RECOVERY_MS);

    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
    // Old forwarders and the sshd sessions of dead connections are gone too.
    expect(await settleNoHopProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('the same session with --transport udp gets no reply through the blocked link (the test can fail)', async () => {
    const { lab } = ctx;
    await lab.blockUdp('client', true);
    const s = await sessions.start(['up', 'target', '--transport', 'udp']);
    // The relays start over ssh (TCP), but mosh-client's datagrams never arrive: no prompt.
    await expect(waitForPrompt(s, 8_000)).rejects.toThrow();
    // Closing the terminal (SIGHUP, sometimes twice) still tears everything down.
    await s.tmux.kill();
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

describe.skipIf(reason)('tcp transport through a jump-only bastion', () => {
  // ForceCommand: the bastion runs nothing for its users, but still forwards TCP (ProxyJump).
  const ctx = useLab({ sshdConfig: { bastion: ['ForceCommand /bin/false'] } });
  const sessions = useSessions(ctx);

  it('works with tcp, where nothing can be started on the bastion', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--transport', 'tcp']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

describe.skipIf(reason)('udp transport through a jump-only bastion', () => {
  const ctx = useLab({ sshdConfig: { bastion: ['ForceCommand /bin/false'] } });
  const sessions = useSessions(ctx);

  it('fails at the relay step, naming the bastion and suggesting --transport tcp; nothing left', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--transport', 'udp']);
    const code = await waitForExit(s, 40_000);
    const err = stderrOf(s);
    expect(code, err).toBe(1);
    expect(err).toMatch(/start relay on bastion: the relay command on bastion ended without a word/);
    expect(err).toMatch(/--transport tcp/);
    expect(await settleNoSessionProcesses(lab), err).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

// mosh carried inside the ssh chain (--transport tcp) where UDP cannot pass:
// UDP between the client and the first hop is dropped (nftables), the session
// works through the forwarder on the target (with either ssh client), survives
// a client address change and a 15 s outage, and leaves nothing on any host; and a jump-only bastion
// (ForceCommand: it runs nothing for the user) carries it too. transport auto
// takes udp where it passes and switches to tcp where it does not, without the
// user's help, and back to udp when UDP passes again; tcp with no python3 or
// perl on the target says what to install.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/index.js';
import {
  exitSession,
  moshctlBeside,
  readRecord,
  records,
  roamAndOutage,
  sessionProcesses,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  useSessions,
  waitForExit,
  waitForPrompt,
  type UpSession,
} from './moshctl.js';
import { e2eSkipReason, programFiles, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();
const RECOVERY_MS = 30_000;
const OUTAGE_MS = 15_000;
/**
 * UDP passing again → the session on UDP: a probe every 2 s, then a trial
 * until mosh-server's next datagram comes by UDP (an idle session: mosh's
 * heartbeats, about 3 s apart each way), then the record written within 0.5 s.
 * About 4-8 s (measured 6.5 s); the bound leaves room for a loaded machine.
 */
const RETURN_MS = 15_000;

/** How auto's datagrams travel, as its `up` last wrote in the record (what status shows). */
async function pathOf(s: UpSession): Promise<{ via: string; changes: number } | undefined> {
  return ((await readRecord(s)) as unknown as { path?: { via: string; changes: number } }).path;
}

/** Polls the record until the path is `via` after `changes` changes; returns how long that took. */
async function waitForPath(s: UpSession, via: string, changes: number, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const p = await pathOf(s);
    if (p?.via === via && p.changes === changes) return Date.now() - started;
    if (Date.now() - started > timeoutMs)
      throw new Error(
        `path not ${via} (change ${changes}) within ${timeoutMs} ms: ${JSON.stringify(p)}\n${stderrOf(s)}`,
      );
    await sleep(100);
  }
}

/** Waits until `check` is true (polled); false when `timeoutMs` passed first. */
async function settle(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(250)) if (await check()) return true;
  return check();
}

/**
 * The forwarder on the target and its launching sh (their argv names where
 * mosh-server listens: --to ADDRESS:PORT), as "host pid cmdline".
 */
async function forwarders(lab: Lab, to = ''): Promise<string[]> {
  return (await sessionProcesses(lab)).filter((p) => p.startsWith('target ') && p.includes(`--to ${to}`));
}

function udpBlocked(ctx: { readonly lab: Lab }): () => Promise<void> {
  return async () => {
    await ctx.lab.linkUp('client');
    await ctx.lab.clearDrops();
  };
}

/**
 * A tcp session where UDP from the client is dropped: it works through the
 * forwarder, survives a roam and a 15 s outage, and leaves nothing on any host.
 */
async function blockedRoamAndOutage(
  ctx: { readonly lab: Lab },
  sessions: ReturnType<typeof useSessions>,
): Promise<void> {
  const { lab } = ctx;
  await lab.blockUdp('client', true);
  const s = await sessions.start(['up', 'target', '--transport', 'tcp']);
  await waitForPrompt(s, 40_000);
  await typeAndCheck(lab, s);
  const running = await sessionProcesses(lab);
  // mosh-server listens on the target's loopback (-i 127.0.0.1), where the forwarder sends.
  expect(running.filter((p) => /^target \d+ mosh-server new -i 127\.0\.0\.1 /.test(p))).toHaveLength(1);
  expect(await forwarders(lab, '127.0.0.1:')).not.toEqual([]);
  // No relay anywhere: the bastion only forwards the ssh chain.
  expect(
    running.filter((p) => p.startsWith('bastion ')),
    running.join('\n'),
  ).toEqual([]);

  await roamAndOutage(lab, s, RECOVERY_MS, OUTAGE_MS);

  expect(await exitSession(s)).toBe(0);
  expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  expect(records(s)).toEqual([]);
  // Old forwarders and the sshd sessions of dead connections are gone too.
  expect(await settleNoHopProcesses(lab), stderrOf(s)).toEqual([]);
}

describe.skipIf(reason)('tcp transport where UDP is dropped', () => {
  const ctx = useLab({});
  const sessions = useSessions(ctx, udpBlocked(ctx));

  it('works through a bastion that passes no UDP, survives a roam and a 15 s outage, and leaves nothing', () =>
    blockedRoamAndOutage(ctx, sessions));

  it('auto finds UDP blocked and switches to tcp within seconds, without restarting mosh-client; nothing left', async () => {
    const { lab } = ctx;
    await lab.blockUdp('client', true);
    const s = await sessions.start(['up', 'target', '--transport', 'auto']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    // The relay was started (auto tries UDP first); the forwarder carries the session now, to
    // the address mosh-server bound with -s (the target's, where the relay sent).
    expect(await forwarders(lab, `${lab.hosts.target.sshAddress}:`)).not.toEqual([]);
    const clients = (await sessionProcesses(lab)).filter((p) => p.includes('mosh-client'));
    expect(clients).toHaveLength(1);
    await lab.roam();
    await typeAndCheck(lab, s, RECOVERY_MS);
    // The same mosh-client throughout.
    expect((await sessionProcesses(lab)).filter((p) => p.includes('mosh-client'))).toEqual(clients);
    expect(await exitSession(s)).toBe(0);
    expect(stderrOf(s)).toMatch(
      /transport auto: switched to tcp, no UDP reply from bastion \(\S+\) within 2 s of the first datagram/,
    );
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
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

// The user's own OpenSSH: one master per hop; after the roam the chain is
// dropped as soon as the address its first master left from is gone.
describe.skipIf(reason)('tcp transport where UDP is dropped (openssh)', () => {
  const ctx = useLab({ sshClient: 'openssh' });
  const sessions = useSessions(ctx, udpBlocked(ctx));

  it('works, survives a roam and a 15 s outage, and leaves nothing', () =>
    blockedRoamAndOutage(ctx, sessions));
});

describe.skipIf(reason).each(SSH_CLIENTS)('auto where UDP comes and goes (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  const sessions = useSessions(ctx, udpBlocked(ctx));

  it('tcp while UDP is dropped, back on udp within seconds once it passes, tcp again when it stops, udp after a roam; one mosh-client working throughout; nothing left', async () => {
    const { lab } = ctx;
    await lab.blockUdp('client', true);
    const s = await sessions.start(['up', 'target', '--transport', 'auto']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    await waitForPath(s, 'tcp', 1, 5_000);
    expect(await forwarders(lab)).not.toEqual([]);
    const clients = (await sessionProcesses(lab)).filter((p) => p.includes('mosh-client'));
    expect(clients).toHaveLength(1);
    // On tcp for a while: probes go out unanswered.
    await sleep(3_000);

    await lab.blockUdp('client', false);
    const took = await waitForPath(s, 'udp', 2, RETURN_MS);
    console.log(`auto (${sshClient}): back on udp ${took} ms after UDP passed again`);
    await typeAndCheck(lab, s);
    // The forwarder ends once UDP carries; the relay stays, and so does mosh-client.
    expect(await settle(async () => (await forwarders(lab)).length === 0, 10_000)).toBe(true);
    const running = await sessionProcesses(lab);
    expect(
      running.filter((p) => p.startsWith('bastion ')),
      running.join('\n'),
    ).not.toEqual([]);
    const status = await moshctlBeside(lab, s, ['status']);
    expect(status.stdout, status.stderr).toMatch(
      /\n {2}path +udp through the relays since \S+, changed 2×\n/,
    );

    await lab.blockUdp('client', true);
    await waitForPath(s, 'tcp', 3, 20_000);
    await typeAndCheck(lab, s, RECOVERY_MS);
    expect(await forwarders(lab)).not.toEqual([]);

    // A roam to a network where UDP passes: probed at once from the new address, back on udp.
    await lab.blockUdp('client', false);
    await lab.roam();
    await waitForPath(s, 'udp', 4, RETURN_MS);
    await typeAndCheck(lab, s, RECOVERY_MS);
    expect((await sessionProcesses(lab)).filter((p) => p.includes('mosh-client'))).toEqual(clients);

    expect(await exitSession(s)).toBe(0);
    const err = stderrOf(s);
    expect(err).toMatch(/transport auto: switched to tcp, no UDP reply from bastion \(\S+\) within 2 s/);
    expect(err).toMatch(/transport auto: back on udp, UDP passes again through bastion/);
    expect(err).toMatch(/transport auto: switched to tcp, no UDP reply from bastion \(\S+\) for 8 s/);
    expect(await settleNoSessionProcesses(lab), err).toEqual([]);
    expect(records(s)).toEqual([]);
    expect(await settleNoHopProcesses(lab), err).toEqual([]);
  });
});

describe.skipIf(reason)('a jump-only bastion, with each transport', () => {
  // ForceCommand: the bastion runs nothing for its users, but still forwards TCP (ProxyJump).
  const ctx = useLab({ sshdConfig: { bastion: ['ForceCommand /bin/false'] } });
  const sessions = useSessions(ctx);

  it('tcp: works, where nothing can be started on the bastion', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--transport', 'tcp']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('auto: goes by tcp from the start when the relay cannot start there, and says why', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--transport', 'auto']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    expect(await forwarders(lab)).not.toEqual([]);
    expect(await exitSession(s)).toBe(0);
    expect(stderrOf(s), stderrOf(s)).toMatch(/transport auto: tcp from the start, relay on bastion failed: /);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('udp: fails at the relay step, naming the bastion and suggesting --transport tcp; nothing left', async () => {
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

describe.skipIf(reason)('auto transport where UDP passes', () => {
  const ctx = useLab({});
  const sessions = useSessions(ctx);

  it('stays on udp through the relay (no forwarder ever starts), survives a roam, and leaves nothing', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--transport', 'auto']);
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    const running = await sessionProcesses(lab);
    expect(
      running.filter((p) => p.startsWith('bastion ')),
      running.join('\n'),
    ).not.toEqual([]);
    expect(await forwarders(lab)).toEqual([]);
    await lab.roam();
    await typeAndCheck(lab, s, RECOVERY_MS);
    await sleep(3_000); // longer than the 2 s switch: a quiet session is not a blocked one
    await typeAndCheck(lab, s);
    expect(await forwarders(lab)).toEqual([]);
    expect(await exitSession(s)).toBe(0);
    expect(stderrOf(s)).not.toMatch(/switched to tcp/);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

describe.skipIf(reason)('tcp transport with neither python3 nor perl on the target', () => {
  const ctx = useLab({ hide: { target: programFiles(['python3', 'perl']) } });
  const sessions = useSessions(ctx);

  it('exits 1 naming what to install and the other transport, and stops the mosh-server it started', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--transport', 'tcp']);
    const code = await waitForExit(s, 40_000);
    const err = stderrOf(s);
    expect(code, err).toBe(1);
    expect(err).toMatch(/start forwarder on target: the datagram forwarder did not start/);
    expect(err).toContain('install python3 or perl on target');
    expect(err).toMatch(/stopped 1 process\(es\)/);
    expect(await settleNoSessionProcesses(lab), err).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

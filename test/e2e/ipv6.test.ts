// mosh's own issue #1342 through moshctl: an IPv4-only client, a dual-stack
// bastion and an IPv6-only target, where the relay forwards to the target's
// IPv6 address; and a target the client reaches over IPv6 itself, with no
// relay. mosh-server must answer on the address the datagrams go to (its
// `-s`, moshctl's mosh.bind_server default `ssh`): started without it, it
// listens on 0.0.0.0 only and the session never connects. Each session
// survives a roam and a 15 s outage, and leaves nothing on any host; tcp and
// auto reach the IPv6-only target too, and so does the perl relay.
import { describe, expect, it } from 'vitest';
import type { Lab } from '../../src/lab/index.js';
import {
  bothWays,
  exitSession,
  outage,
  readRecord,
  records,
  restoreNetwork,
  sessionProcesses,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  useSessions,
  waitForPrompt,
  type UpSession,
} from './moshctl.js';
import { e2eSkipReason, programFiles, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

const TARGET6 = '2001:db8:113::10';
const RECOVERY_MS = 20_000;
const OUTAGE_MS = 15_000;

/** Local addresses of mosh-server's UDP sockets on the target, as ss prints them (`[v6]:port`). */
async function serverSockets(lab: Lab): Promise<string[]> {
  const r = await lab.exec('target', ['ss', '-uanpH']);
  return r.stdout
    .split('\n')
    .filter((l) => l.includes('"mosh-server"'))
    .map((l) => l.trim().split(/\s+/)[3] ?? l);
}

/** The one mosh-client's command line. */
async function moshClientCommand(lab: Lab): Promise<string> {
  const clients = (await sessionProcesses(lab)).filter((p) => /^client \d+ mosh-client /.test(p));
  expect(clients).toHaveLength(1);
  return (clients[0] ?? '').split(' ').slice(2).join(' ');
}

/** Roam, then a 15 s outage, each followed by a command that goes to the target and its output back. */
async function roamAndOutage(lab: Lab, s: UpSession, what: string): Promise<void> {
  const before = lab.hosts.client.addresses.join(', ');
  await lab.roam();
  const roamMs = await bothWays(lab, s, RECOVERY_MS);
  console.log(
    `${what}: back ${roamMs} ms after roaming ${before} -> ${lab.hosts.client.addresses.join(', ')}`,
  );
  await outage(lab, OUTAGE_MS);
  const outageMs = await bothWays(lab, s, RECOVERY_MS);
  console.log(`${what}: back ${outageMs} ms after a ${OUTAGE_MS} ms outage`);
}

/** exit ends moshctl with 0, and nothing of the session is left on any host (nor an sshd session of a dead connection). */
async function exitLeavesNothing(lab: Lab, s: UpSession): Promise<void> {
  expect(await exitSession(s), stderrOf(s)).toBe(0);
  expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  expect(records(s)).toEqual([]);
  expect(await settleNoHopProcesses(lab), stderrOf(s)).toEqual([]);
}

describe.skipIf(reason).each(SSH_CLIENTS)(
  'an IPv6-only target behind a dual-stack bastion, from an IPv4-only client (%s)',
  (sshClient) => {
    const ctx = useLab({ ipv6: 'behind-bastion', sshClient });
    const sessions = useSessions(ctx, restoreNetwork(ctx));

    it('up works through the relay to the IPv6 address, survives a roam and a 15 s outage, and leaves nothing', async () => {
      const { lab } = ctx;
      expect(lab.hosts.target.sshAddress).toBe(TARGET6);
      const s = await sessions.start(['up', 'target']);
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      const rec = await readRecord(s);
      expect(rec.relays.map((r) => r.host)).toEqual(['bastion']);
      // mosh-server answers where the relay sends: the target's IPv6 address, not 0.0.0.0.
      expect(await serverSockets(lab)).toEqual([`[${TARGET6}]:${rec.server?.port ?? 0}`]);
      // mosh-client talks to the relay on the bastion's IPv4 address.
      expect(await moshClientCommand(lab)).toMatch(/ 192\.0\.2\.1 61\d{3}$/);
      await roamAndOutage(lab, s, `IPv6 target behind a bastion (${sshClient})`);
      await exitLeavesNothing(lab, s);
    });

    it('--transport tcp reaches it too: the datagrams cross the ssh chain, nothing runs on the bastion', async () => {
      const { lab } = ctx;
      const s = await sessions.start(['up', 'target', '--transport', 'tcp']);
      await waitForPrompt(s);
      await bothWays(lab, s);
      const rec = await readRecord(s);
      expect(rec.relays).toEqual([]);
      // The forwarder sends from the target's loopback, so mosh-server listens there.
      expect(await serverSockets(lab)).toEqual([`127.0.0.1:${rec.server?.port ?? 0}`]);
      expect((await sessionProcesses(lab)).filter((p) => p.startsWith('bastion '))).toEqual([]);
      await exitLeavesNothing(lab, s);
    });

    it('--transport auto with UDP dropped on the client link: the forwarder takes over, sending to the IPv6 address -s bound', async () => {
      const { lab } = ctx;
      await lab.blockUdp('client', true);
      const s = await sessions.start(['up', 'target', '--transport', 'auto']);
      await waitForPrompt(s, 40_000);
      await typeAndCheck(lab, s);
      const port = (await readRecord(s)).server?.port ?? 0;
      expect(await serverSockets(lab)).toEqual([`[${TARGET6}]:${port}`]);
      const forwarders = (await sessionProcesses(lab)).filter(
        (p) => p.startsWith('target ') && p.includes(`--to [${TARGET6}]:${port}`),
      );
      expect(forwarders).not.toEqual([]);
      await lab.roam();
      await bothWays(lab, s, RECOVERY_MS);
      await exitLeavesNothing(lab, s);
      expect(stderrOf(s)).toMatch(/transport auto: switched to tcp, no UDP reply from bastion/);
    });
  },
);

describe.skipIf(reason)(
  'an IPv6-only target behind a bastion with neither python3 nor socat (the perl relay)',
  () => {
    const ctx = useLab({ ipv6: 'behind-bastion', hide: { bastion: programFiles(['python3', 'socat']) } });
    const sessions = useSessions(ctx, restoreNetwork(ctx));

    it('the perl relay forwards to the IPv6 address, and the session survives a roam', async () => {
      const { lab } = ctx;
      const s = await sessions.start(['up', 'target']);
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      const rec = await readRecord(s);
      expect(rec.relays.map((r) => r.runtime)).toEqual(['perl']);
      expect(await serverSockets(lab)).toEqual([`[${TARGET6}]:${rec.server?.port ?? 0}`]);
      await lab.roam();
      const ms = await bothWays(lab, s, RECOVERY_MS);
      console.log(`perl relay to an IPv6 target: back ${ms} ms after a roam`);
      await exitLeavesNothing(lab, s);
    });
  },
);

describe.skipIf(reason).each(SSH_CLIENTS)(
  'an IPv6-only target the client reaches directly (%s)',
  (sshClient) => {
    const ctx = useLab({ ipv6: 'direct', sshClient });
    const sessions = useSessions(ctx, restoreNetwork(ctx));

    it('up works with no relay, mosh-client sending to the IPv6 address itself; survives a roam and a 15 s outage, and leaves nothing', async () => {
      const { lab } = ctx;
      const s = await sessions.start(['up', 'target']);
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      const rec = await readRecord(s);
      expect(rec.relays).toEqual([]);
      const port = rec.server?.port ?? 0;
      expect(await serverSockets(lab)).toEqual([`[${TARGET6}]:${port}`]);
      expect(await moshClientCommand(lab)).toMatch(new RegExp(` ${TARGET6} ${port}$`));
      // Nothing of the session runs on the bastion, which only routes.
      expect((await sessionProcesses(lab)).filter((p) => p.startsWith('bastion '))).toEqual([]);
      await roamAndOutage(lab, s, `IPv6 target reached directly (${sshClient})`);
      await exitLeavesNothing(lab, s);
    });
  },
);

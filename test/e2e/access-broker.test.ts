// Hosts behind an access broker (AWS SSM, GCP IAP, cloudflared, Teleport): ssh
// reaches them through a ProxyCommand, there is no network path from the
// client and their names resolve nowhere. In the lab the target's sshd is
// reached through a broker endpoint on the bastion (`nc 192.0.2.1 PORT`, a
// stream that crosses the client's own network, as a cloud broker's does)
// or through a unix socket (`nc -U`); moshctl runs with no moshproxy.yaml
// at all, from an empty folder, with only that ssh_config. It picks the
// openssh client and the tcp transport by itself; the session survives a
// roam and a 15 s outage; down ends it; brokers that fail, hang or ask for a
// browser login are reported as such, and nothing is left anywhere.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKER_SSO_URL, type Lab } from '../../src/lab/index.js';
import {
  exitSession,
  records,
  roamAndOutage,
  runWithoutTerminal,
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
const ENDPOINT_PORT = 8022;

describe.skipIf(reason)('hosts behind an access broker, with no moshproxy.yaml', () => {
  const ctx = useLab({ bastions: 1, broker: ['target', 'bastion'] });
  const { start } = useSessions(ctx);
  /** An empty folder: no moshproxy.yaml in it or above it. */
  let empty = '';
  let sshConfig = '';

  beforeAll(async () => {
    const { lab } = ctx;
    empty = mkdtempSync('/tmp/moshctl-e2e-nofile-');
    chmodSync(empty, 0o755);
    const endpoint = await lab.brokerEndpoint('bastion', ENDPOINT_PORT, 'target');
    sshConfig = lab.brokerSshConfig({
      hosts: [
        // An SSM-style host: the broker's endpoint is on the network, the host is not.
        { alias: 'devbox-ssm', host: 'target', proxyCommand: endpoint.proxyCommand },
        { alias: 'bastion-ssm', host: 'bastion' },
        { alias: 'devbox-denied', host: 'target', proxyCommand: lab.brokerFaultCommand('denied', 'target') },
        { alias: 'devbox-hangs', host: 'target', proxyCommand: lab.brokerFaultCommand('hang', 'target') },
        { alias: 'devbox-sso', host: 'target', proxyCommand: lab.brokerFaultCommand('sso', 'target') },
      ],
      jumps: [{ alias: 'devbox-behind', host: 'target', via: 'bastion-ssm' }],
    }).path;
  });
  afterAll(() => {
    if (empty) rmSync(empty, { recursive: true, force: true });
  });

  const env = (): Record<string, string> => ({ MOSHCTL_SSH_CONFIG: sshConfig });
  const noFile = () => ({ noConfig: true, cwd: empty, env: env() });
  /** The lab's broker bridges (socat … /broker/…): a connection left open through one still shows as its sshd session. */
  const bridge = (line: string): boolean => /^\S+ \d+ socat .*\/broker\//.test(line);
  const settleHops = (lab: Lab): Promise<string[]> => settleNoHopProcesses(lab, 15_000, bridge);

  const onBastionButBroker = (p: string): boolean => p.startsWith('bastion ') && !p.includes('TCP4-LISTEN');

  it('plan chooses the openssh client and the tcp transport by itself, and says why', async () => {
    const { lab } = ctx;
    const r = await runWithoutTerminal(lab, ['plan', 'devbox-ssm'], noFile());
    expect(r.code, r.stderr).toBe(0);
    const [route, client, transport] = r.stdout.split('\n');
    expect(route).toBe('moshctl up devbox-ssm: local → devbox-ssm');
    expect(client).toBe(
      `ssh client: openssh (chosen by itself: devbox-ssm needs a ProxyCommand (nc ${lab.hosts.bastion.sshAddress} ${ENDPOINT_PORT}), which the built-in ssh2 cannot do)`,
    );
    expect(transport).toMatch(
      /^transport: tcp \(chosen by itself: devbox-ssm is reached through a ProxyCommand and its address i-0\w+-target\.broker\.internal does not resolve here, so mosh's UDP has no way to it\)$/,
    );
  });

  it('up with no file and no options: a session over tcp, status shows it, down from elsewhere ends it, nothing left', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'devbox-ssm'], noFile());
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    // Nothing of the session on the bastion: it only hosts the broker's endpoint (and its connections).
    expect(await sessionProcesses(lab).then((l) => l.filter(onBastionButBroker))).toEqual([]);
    const status = await runWithoutTerminal(lab, ['status', '--json'], {
      ...noFile(),
      env: { ...env(), XDG_STATE_HOME: s.stateHome },
    });
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ sessions: [{ name: 'devbox-ssm' }] });
    const down = await runWithoutTerminal(lab, ['down', 'devbox-ssm'], {
      ...noFile(),
      env: { ...env(), XDG_STATE_HOME: s.stateHome },
    });
    expect(down.code, down.stderr).toBe(0);
    await waitForExit(s);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
    expect(await settleHops(lab), stderrOf(s)).toEqual([]);
  });

  it('--transport tcp: the session survives a roam and a 15 s outage, the broker run again; nothing left', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'devbox-ssm', '--transport', 'tcp'], noFile());
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    await roamAndOutage(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
    expect(await settleHops(lab), stderrOf(s)).toEqual([]);
  });

  it('--transport auto is tcp here (no address for UDP), and works', async () => {
    const { lab } = ctx;
    const plan = await runWithoutTerminal(lab, ['plan', 'devbox-ssm', '--transport', 'auto'], noFile());
    expect(plan.stdout).toMatch(
      /^transport: tcp \(--transport, but devbox-ssm is reached through a ProxyCommand/m,
    );
    const s = await start(['up', 'devbox-ssm', '--transport', 'auto'], noFile());
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleHops(lab), stderrOf(s)).toEqual([]);
  });

  it('--transport udp is refused at once (exit 2), saying why and what to use; nothing started', async () => {
    const { lab } = ctx;
    const r = await runWithoutTerminal(
      lab,
      ['up', 'devbox-ssm', '--transport', 'udp', '--no-connect'],
      noFile(),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("mosh's UDP cannot follow a ProxyCommand");
    expect(r.stderr).toContain('use --transport tcp');
    expect(r.ms).toBeLessThan(10_000);
    expect(await sessionProcesses(lab)).toEqual([]);
  });

  it('a host behind a brokered bastion (ProxyJump): openssh and tcp, nothing runs on the bastion', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'devbox-behind'], noFile());
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    expect(await sessionProcesses(lab).then((l) => l.filter(onBastionButBroker))).toEqual([]);
    expect(await exitSession(s)).toBe(0);
    expect(await settleHops(lab), stderrOf(s)).toEqual([]);
  });

  it('ssh_client: ssh2 named in a moshproxy.yaml refuses the broker host, as before (exit 1)', async () => {
    const { lab } = ctx;
    const file = join(lab.dir, 'named-ssh2.yaml');
    writeFileSync(file, 'version: 1\ndefaults:\n  ssh_client: ssh2\n');
    const s = await start(['up', 'devbox-ssm'], { config: file, env: env(), cwd: empty });
    expect(await waitForExit(s, 20_000)).toBe(1);
    expect(stderrOf(s)).toContain('devbox-ssm needs a ProxyCommand');
    expect(stderrOf(s)).toContain('remove "ssh_client: ssh2"');
    expect(await sessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it("a broker that refuses: exit 1 naming the host and quoting the broker's own error; nothing left", async () => {
    const { lab } = ctx;
    const s = await start(['up', 'devbox-denied'], noFile());
    expect(await waitForExit(s, 20_000)).toBe(1);
    const err = stderrOf(s);
    expect(err).toContain('the ProxyCommand of devbox-denied');
    expect(err).toMatch(/broker: access denied for i-0\w+-target\.broker\.internal/);
    expect(await settleNoSessionProcesses(lab), err).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('a broker that hangs: exit 1 within connect_timeout, and the broker is not left running', async () => {
    const { lab } = ctx;
    const t0 = Date.now();
    const s = await start(['up', 'devbox-hangs'], noFile());
    expect(await waitForExit(s, 30_000)).toBe(1);
    // The lab's ssh_config says ConnectTimeout 5.
    expect(Date.now() - t0).toBeLessThan(5_000 + 5_000);
    expect(stderrOf(s)).toContain('the ProxyCommand of devbox-hangs (root@');
    expect(stderrOf(s)).toContain('gave no ssh connection within 5 s');
    expect(await lab.hangingBrokerPids()).toEqual([]);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
  });

  it('a broker that asks for a browser login: its URL is on the terminal before the task list, then the session works', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'devbox-sso'], noFile());
    await s.tmux.waitFor(new RegExp(BROKER_SSO_URL.replace(/[.?]/g, '\\$&')), 20_000);
    // On the terminal, where ssh's own prompts go, while the hop connects: the task list starts after.
    expect(stderrOf(s)).toContain('connecting devbox-sso');
    expect(stderrOf(s)).not.toContain('connected in');
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    const err = stderrOf(s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleHops(lab), err).toEqual([]);
  });
});

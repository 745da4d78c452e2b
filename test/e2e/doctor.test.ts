// `moshctl doctor` against real hosts: sshd, the relays and a UDP echo in the
// lab's namespaces. A healthy route passes every check and leaves nothing
// running; UDP dropped from the client fails the round trip at the first hop
// and finds tcp working; a bastion with no relay runtime fails that check on
// the bastion; an unknown host key names its hop and skips everything after.
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Lab } from '../../src/lab/index.js';
import type { DoctorReport } from '../../src/doctor/types.js';
import { runWithoutTerminal, settleNoHopProcesses, settleNoSessionProcesses } from './moshctl.js';
import { e2eSkipReason, useLab } from './support.js';

const reason = e2eSkipReason();

/** python3, perl and socat as the bastion would run them (as in relay-runtime.test.ts): hidden there. */
function runtimes(): string[] {
  const candidates = [
    '/usr/bin/python3',
    '/usr/local/bin/python3',
    join(homedir(), '.pyenv/shims/python3'),
    '/usr/bin/perl',
    '/usr/bin/socat',
  ];
  return [...new Set(candidates.filter((p) => existsSync(p)).map((p) => realpathSync(p)))];
}

/** doctor leaves nothing behind: no relay, echo or forwarder, and no sshd session of its connections. */
async function expectNothingLeft(lab: Lab, stderr: string): Promise<void> {
  expect(await settleNoSessionProcesses(lab), stderr).toEqual([]);
  expect(await settleNoHopProcesses(lab), stderr).toEqual([]);
}

function parse(stdout: string): DoctorReport {
  return JSON.parse(stdout) as DoctorReport;
}

describe.skipIf(reason)('moshctl doctor, one bastion', () => {
  const ctx = useLab({});
  afterEach(async () => {
    await ctx.lab.clearDrops();
  });

  it('a healthy route: every check ok, exit 0, in text and JSON; nothing left running', async () => {
    const { lab } = ctx;
    const text = await runWithoutTerminal(lab, ['doctor', 'target']);
    expect(text.code, text.stderr).toBe(0);
    console.log(`doctor target (healthy, text) took ${text.ms} ms`);
    expect(text.stdout).toMatch(
      /^target: local → bastion → target \(transport udp\)\nlocal\n {2}ok {4}mosh-client {5}\/\S+\/mosh-client: mosh-client \(mosh 1\.\d+\.\d+\)[^\n]*\nbastion\n {2}ok {4}reachable/,
    );
    expect(text.stdout).toMatch(/^ {2}ok {4}relay runtime {3}python3, on UDP port 6100\d/m);
    // The mosh-server up would run, where it is, and its version; the same version as mosh-client here.
    expect(text.stdout).toMatch(
      /^ {2}ok {4}mosh-server {5}\/\S+\/mosh-server: mosh-server \(mosh 1\.\d+\.\d+\)/m,
    );
    expect(text.stdout).toMatch(
      /^ {2}ok {4}mosh versions {3}mosh-client 1\.\d+\.\d+ here, mosh-server 1\.\d+\.\d+ on target$/m,
    );
    expect(text.stdout).toMatch(/^ {2}ok {4}locale {10}C\.UTF-8 \(UTF-8\)$/m);
    expect(text.stdout).toMatch(/^ {2}ok {4}udp round trip {2}bastion: 3\/3 echoes from bastion → target/m);
    expect(text.stdout).toMatch(/all checks passed\n$/);
    expect(text.stderr).toContain('moshctl: doctor: target: udp round trip');
    await expectNothingLeft(lab, text.stderr);

    const json = await runWithoutTerminal(lab, ['doctor', 'target', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const r = parse(json.stdout);
    expect(r).toMatchObject({ version: 3, target: 'target', route: ['bastion', 'target'], transport: 'udp' });
    expect(r.firstFailure).toBeNull();
    // tcp is tried only when UDP fails.
    expect(r.checks.filter((c) => c.status !== 'ok').map((c) => c.check)).toEqual(['tcp-round-trip']);
    expect(r.checks).toHaveLength(14);
    await expectNothingLeft(lab, json.stderr);
  });

  it('UDP dropped from the client: the round trip fails at the bastion, tcp works, the hint says use it', async () => {
    const { lab } = ctx;
    await lab.blockUdp('client', true);
    const run = await runWithoutTerminal(lab, ['doctor', 'target', '--json']);
    console.log(`doctor target (UDP dropped) took ${run.ms} ms`);
    expect(run.code, run.stderr).toBe(1);
    const r = parse(run.stdout);
    expect(r.firstFailure).toMatchObject({ host: 'bastion', check: 'udp-round-trip', status: 'fail' });
    expect(r.firstFailure?.detail).toMatch(
      /^no echo within 2 s of 3 datagrams to bastion \(192\.0\.2\.1:6100\d\); tcp would work \(checked\)$/,
    );
    expect(r.firstFailure?.hint).toContain('use --transport tcp or --transport auto');
    expect(r.checks.find((c) => c.check === 'tcp-round-trip')).toMatchObject({
      host: 'target',
      status: 'ok',
    });
    // Every hop's own checks still pass: only the path is at fault.
    expect(r.checks.filter((c) => c.status !== 'ok').map((c) => c.check)).toEqual(['udp-round-trip']);
    await expectNothingLeft(lab, run.stderr);
  });

  it.each(['ssh2', 'openssh'] as const)(
    '%s, an unknown host key of the target: names the target, skips every later check, starts nothing',
    async (client) => {
      const { lab } = ctx;
      // Only the bastion's key is known.
      const known = join(lab.dir, `known_hosts.doctor-${client}`);
      const key = readFileSync(join(lab.dir, 'bastion', 'ssh_host_ed25519_key.pub'), 'utf8').split(/\s+/);
      writeFileSync(known, `192.0.2.1 ${key[0] ?? ''} ${key[1] ?? ''}\n`, { mode: 0o600 });
      const config = join(lab.dir, `doctor-${client}.yaml`);
      writeFileSync(config, lab.configText({ knownHostsFile: known, sshClient: client }), { mode: 0o600 });
      const run = await runWithoutTerminal(lab, ['doctor', 'target'], { config });
      expect(run.code, run.stderr).toBe(1);
      expect(run.stdout).toMatch(/^ {2}ok {4}forwarding {6}opened target through it$/m);
      expect(run.stdout).toMatch(/^ {2}FAIL {2}host key {8}host key of target \(root@203\.0\.113\.10:22\)/m);
      expect(run.stdout).toMatch(/^first failure: host key of target: host key of target/m);
      expect(run.stdout).toContain('  hint: check ');
      const skipped = run.stdout
        .split('\n')
        .filter((l) => l.includes('not checked: host key of target failed'));
      // login, mosh-server, mosh versions and locale of the target, the bastion's relay runtime, both round trips.
      expect(skipped).toHaveLength(7);
      await expectNothingLeft(lab, run.stderr);
    },
  );
});

describe.skipIf(reason)('moshctl doctor, a bastion where no relay runtime runs', () => {
  const ctx = useLab({ hide: { bastion: runtimes() } });

  it('fails the relay runtime check naming the bastion, and finds tcp working', async () => {
    const { lab } = ctx;
    const run = await runWithoutTerminal(lab, ['doctor', 'target', '--json']);
    expect(run.code, run.stderr).toBe(1);
    const r = parse(run.stdout);
    expect(r.firstFailure).toMatchObject({ host: 'bastion', check: 'relay-runtime', status: 'fail' });
    expect(r.firstFailure?.detail).toContain(
      'no relay runtime on bastion: neither python3 (>= 3.6) nor perl runs there, and socat is not installed',
    );
    expect(r.firstFailure?.hint).toContain('apt install python3');
    expect(r.firstFailure?.hint).toContain('--transport tcp');
    expect(r.checks.find((c) => c.check === 'udp-round-trip')?.status).toBe('skip');
    expect(r.checks.find((c) => c.check === 'tcp-round-trip')?.status).toBe('ok');
    await expectNothingLeft(lab, run.stderr);
  });
});

describe.skipIf(reason)('moshctl doctor, a target that forbids forwarding and the agent', () => {
  const ctx = useLab({ sshdConfig: { target: ['AllowTcpForwarding no', 'AllowAgentForwarding no'] } });

  it.each(['ssh2', 'openssh'] as const)(
    '%s: says so, with the sshd_config lines to change, before a session would fail',
    async (client) => {
      const { lab } = ctx;
      const override = join(lab.dir, `forwards-${client}.yaml`);
      writeFileSync(
        override,
        [
          'version: 1',
          `defaults: {ssh_client: ${client}}`,
          'hosts:',
          '  target: {forward: {local: ["18080:localhost:80"]}, forward_agent: true}',
          '',
        ].join('\n'),
      );
      // An agent to forward: without one, doctor says to start one (a different fix).
      const agent = await startAgent(lab);
      let run;
      try {
        run = await runWithoutTerminal(lab, ['-f', override, 'doctor', 'target', '--json'], {
          env: agent.env,
        });
      } finally {
        await agent.stop();
      }
      expect(run.code, run.stderr).toBe(1);
      const r = parse(run.stdout);
      expect(r.firstFailure).toMatchObject({ host: 'target', check: 'port-forwards', status: 'fail' });
      expect(r.firstFailure?.detail).toMatch(
        /^-L 18080:localhost:80 \(\S+:\d+\): target refused to open a connection to localhost:80: administratively prohibited/,
      );
      expect(r.firstFailure?.hint).toContain('AllowTcpForwarding yes');
      expect(r.checks.find((c) => c.check === 'agent-forwarding')).toMatchObject({
        host: 'target',
        status: 'fail',
        hint: expect.stringContaining('AllowAgentForwarding yes') as unknown,
      });
      // mosh itself is fine there.
      expect(r.checks.find((c) => c.check === 'mosh-server')?.status).toBe('ok');
      await expectNothingLeft(lab, run.stderr);
    },
  );
});

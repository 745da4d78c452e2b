// Tests of the lab itself: if the lab lies (the client can reach the target
// directly, a drop rule drops nothing, destroy leaks), every e2e test of
// moshctl built on it proves nothing. Each check has a positive twin so it
// can fail.

import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Lab, Tmux, type HostName } from '../../src/lab/index.js';
import { isAlive, refOf, run, type ProcRef } from '../../src/lab/proc.js';
import { readRecords, registryDir, writeRecord } from '../../src/lab/registry.js';
import { e2eSkipReason, useLab } from './support.js';

const UDP_PORT = '9999';

// Counts datagrams until none arrive for `idle` seconds.
const LISTEN = `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.settimeout(float(sys.argv[2]))
n = 0
try:
    while True:
        s.recvfrom(2048)
        n += 1
except socket.timeout:
    pass
print(n)`;

const SEND = `import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    s.sendto(b'lab-probe', (sys.argv[1], int(sys.argv[2])))
    time.sleep(0.002)`;

/** Send `count` datagrams from one host to an address on another; how many arrived? */
async function udpDelivered(
  lab: Lab,
  from: HostName,
  to: HostName,
  address: string,
  count = 20,
): Promise<number> {
  const listener = lab.exec(to, ['python3', '-c', LISTEN, UDP_PORT, '1.0'], { timeoutMs: 15_000 });
  await sleep(300); // let the listener bind
  const sent = await lab.exec(from, ['python3', '-c', SEND, address, UDP_PORT, String(count)]);
  expect(sent.code, sent.stderr).toBe(0);
  const r = await listener;
  expect(r.code, r.stderr).toBe(0);
  return Number(r.stdout.trim());
}

async function namespaces(): Promise<string[]> {
  return (await run(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0] ?? '');
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 5000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

const reason = e2eSkipReason();

describe.skipIf(reason)('the lab', () => {
  const ctx = useLab({ bastions: 1 });

  it('lets the client ssh to the bastion with the lab key and strict host key checking', async () => {
    const { lab } = ctx;
    const r = await lab.exec('client', [
      'ssh',
      '-i',
      lab.keyFile,
      '-o',
      `UserKnownHostsFile=${lab.knownHostsFile}`,
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      'root@192.0.2.1',
      'ip netns identify',
    ]);
    expect(r.stderr).not.toMatch(/Host key verification failed/);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(lab.hosts.bastion.ns);
  });

  it('reaches the target only with ssh -J, checked against a hashed known_hosts entry', async () => {
    const { lab } = ctx;
    const knownHosts = readFileSync(lab.knownHostsFile, 'utf8');
    expect(knownHosts).toMatch(/^\|1\|\S+\|\S+ ssh-ed25519 /m);
    expect(knownHosts).not.toContain('203.0.113.10');
    const r = await lab.exec('client', lab.sshArgv('target', ['ip netns identify']));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(lab.hosts.target.ns);
    // The bastion's key under the target's name must be refused: the entries really are checked.
    const wrong = await lab.exec('client', [
      ...lab.sshArgv('target').slice(0, -1),
      '-o',
      'HostKeyAlias=192.0.2.1',
      'root@203.0.113.10',
      'true',
    ]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/host key|HOST IDENTIFICATION/i);
  });

  it('writes the moshproxy.yaml of the config contract', () => {
    const yaml = readFileSync(ctx.lab.configFile, 'utf8');
    expect(yaml).toContain(`identity_file: ${ctx.lab.keyFile}`);
    expect(yaml).toMatch(/ {2}target:\n {4}address: 203\.0\.113\.10\n {4}via: \[bastion\]/);
    expect(yaml).not.toContain('bastion2');
  });

  it('does not forward: UDP from the client to the target is lost, from the bastion it arrives', async () => {
    const { lab } = ctx;
    expect(await udpDelivered(lab, 'bastion', 'target', '203.0.113.10')).toBeGreaterThan(0);
    expect(await udpDelivered(lab, 'client', 'target', '203.0.113.10')).toBe(0);
  });

  it('does not forward: a direct TCP ssh from the client to the target fails', async () => {
    const { lab } = ctx;
    expect(await lab.canReach('bastion', '203.0.113.10')).toBe(true);
    expect(await lab.canReach('client', '203.0.113.10')).toBe(false);
    const argv = [
      ...lab.sshArgv('bastion').slice(0, -1),
      '-o',
      'ConnectTimeout=2',
      'root@203.0.113.10',
      'true',
    ];
    const r = await lab.exec('client', argv);
    expect(r.code).not.toBe(0);
  });

  it('drops a share of packets on the client link, and stops when cleared', async () => {
    const { lab } = ctx;
    expect(await udpDelivered(lab, 'client', 'bastion', '192.0.2.1')).toBe(20);
    await lab.dropShare('client', 100);
    expect(await udpDelivered(lab, 'client', 'bastion', '192.0.2.1')).toBe(0);
    expect(await lab.canReach('client', '192.0.2.1')).toBe(false);
    await lab.dropShare('client', 50);
    // Each datagram survives with p = 0.5 (one direction); 200 of them land far inside 40..160.
    const half = await udpDelivered(lab, 'client', 'bastion', '192.0.2.1', 200);
    console.log(`dropShare 50: ${half}/200 datagrams arrived`);
    expect(half).toBeGreaterThan(40);
    expect(half).toBeLessThan(160);
    await lab.clearDrops();
    expect(await udpDelivered(lab, 'client', 'bastion', '192.0.2.1')).toBe(20);
    expect(await lab.canReach('client', '192.0.2.1')).toBe(true);
  });

  it('takes the client link down and up (an outage)', async () => {
    const { lab } = ctx;
    await lab.linkDown();
    expect(await lab.canReach('client', '192.0.2.1')).toBe(false);
    await lab.linkUp();
    expect(await eventually(() => lab.canReach('client', '192.0.2.1'))).toBe(true);
  });

  it('roams the client to a new address that still reaches the bastion', async () => {
    const { lab } = ctx;
    const next = await lab.roam();
    expect(next).toBe('192.0.2.11');
    const addr = await lab.exec('client', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addr.stdout).toContain('192.0.2.11/24');
    expect(addr.stdout).not.toContain('192.0.2.10/');
    // The bastion sees the new source address.
    const r = await lab.exec('client', lab.sshArgv('bastion', ['echo $SSH_CLIENT']));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^192\.0\.2\.11 /);
    await lab.roam('192.0.2.10');
    expect(lab.hosts.client.addresses).toEqual(['192.0.2.10']);
    expect(await lab.canReach('client', '192.0.2.1')).toBe(true);
  });

  it('drives an interactive shell in the client namespace through tmux', async () => {
    const { lab } = ctx;
    const tmux = await Tmux.start(lab, { command: ['bash', '--norc', '--noprofile'] });
    try {
      await tmux.sendKeys('echo "marker-$((6 * 7))-$(ip netns identify)"');
      await tmux.sendEnter();
      // The typed line shows "$((6 * 7))"; only the output line has "42".
      const screen = await tmux.waitFor(`marker-42-${lab.hosts.client.ns}`, 10_000);
      expect(screen.split('\n')[0]?.length ?? 0).toBeLessThanOrEqual(120);
      await tmux.sendKeys('exit 3');
      await tmux.sendEnter();
      expect(await eventually(async () => (await tmux.exitStatus()) === 3)).toBe(true);
    } finally {
      await tmux.kill();
    }
    expect(isAlive({ pid: tmux.serverPid })).toBe(false);
  });

  it('runs two labs at once (one with two bastions), each with its own hosts', async () => {
    const [a, b] = await Promise.all([Lab.create(), Lab.create({ bastions: 2 })]);
    try {
      expect(a.runId).not.toBe(b.runId);
      for (const lab of [a, b]) {
        const r = await lab.exec('client', lab.sshArgv('bastion', ['ip netns identify']));
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.trim()).toBe(lab.hosts.bastion.ns);
      }
      // Two jumps to the target of the two-bastion lab.
      const t = await b.exec('client', b.sshArgv('target', ['ip netns identify']));
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout.trim()).toBe(b.hosts.target.ns);
      expect(readFileSync(b.configFile, 'utf8')).toContain('via: [bastion, bastion2]');
      // Lab a's known_hosts does not vouch for lab b's bastion: they really are separate hosts.
      const cross = await b.exec('client', ['ssh', '-F', a.sshConfigFile, 'root@192.0.2.1', 'true']);
      expect(cross.code).not.toBe(0);
    } finally {
      await Promise.all([a.destroy(), b.destroy()]);
    }
  });

  it('removes a lab whose owner died when the next lab is created', async () => {
    const stale = await Lab.create();
    const pids: ProcRef[] = [];
    for (const h of ['bastion', 'target', 'outsider'] as const) {
      for (const pid of await stale.pidsIn(h)) pids.push(refOf(pid));
    }
    expect(pids.length).toBeGreaterThanOrEqual(3);
    // Pretend the owner crashed: give the record the identity of a process that has exited.
    const gone = await run(['sh', '-c', 'echo $$']);
    const deadOwner = { pid: Number(gone.stdout.trim()), startTime: 1 };
    writeRecord({ ...stale.record(), owner: deadOwner });
    const fresh = await Lab.create();
    try {
      const names = await namespaces();
      for (const h of Object.values(stale.hosts) as { ns: string }[]) expect(names).not.toContain(h.ns);
      expect(pids.filter(isAlive)).toEqual([]);
      expect(existsSync(stale.dir)).toBe(false);
      expect(existsSync(`${registryDir()}/${stale.runId}.json`)).toBe(false);
      await stale.destroy(); // still safe afterwards
    } finally {
      await fresh.destroy();
    }
  });

  it('leaves nothing behind after destroy', async () => {
    const lab = await Lab.create({ bastions: 2 });
    const tmux = await Tmux.start(lab, { command: ['sleep', '1000'] });
    lab.spawn('target', ['sleep', '1000']);
    // A session child of sshd that the lab never tracked itself.
    lab.spawn('client', lab.sshArgv('bastion', ['sleep 1000']));
    await eventually(async () => (await lab.pidsIn('bastion')).length >= 2);
    const pids: ProcRef[] = [...lab.record().pids];
    for (const h of Object.keys(lab.hosts) as HostName[]) {
      for (const pid of await lab.pidsIn(h)) pids.push(refOf(pid));
    }
    expect(pids.filter(isAlive).length).toBeGreaterThanOrEqual(8);
    expect(pids.map((p) => p.pid)).toContain(tmux.serverPid);
    await lab.destroy();
    await lab.destroy(); // idempotent
    const names = await namespaces();
    for (const h of Object.values(lab.hosts) as { ns: string }[]) expect(names).not.toContain(h.ns);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
    expect(readRecords().map((r) => r.runId)).not.toContain(lab.runId);
  });
});

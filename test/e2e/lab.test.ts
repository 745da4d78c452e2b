// Tests of the lab itself: if the lab lies (the client can reach the target
// directly, a drop rule drops nothing, destroy leaks), every e2e test of
// moshctl built on it proves nothing. Each check has a positive twin so it
// can fail.

import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  BROKER_SSO_URL,
  LOGIN_USERS,
  Lab,
  childrenOf,
  Tmux,
  findLabUsers,
  findLeftovers,
  realProgramPath,
  type HostName,
} from '../../src/lab/index.js';
import { isAlive, refOf, run, type ProcRef } from '../../src/lab/proc.js';
import { readRecords, registryDir, withRegistryLock, writeRecord } from '../../src/lab/registry.js';
import { e2eSkipReason, useLab } from './support.js';

const UDP_PORT = '9999';

// Counts datagrams until none arrive for `idle` seconds (on IPv6 when argv[3] is "6").
const LISTEN = `import socket, sys
v6 = sys.argv[3] == '6'
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('::' if v6 else '0.0.0.0', int(sys.argv[1])))
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
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[3])):
    try:
        s.sendto(b'lab-probe', (sys.argv[1], int(sys.argv[2])))
    except OSError:
        pass  # no route: counted as not delivered
    time.sleep(0.002)`;

/** Send `count` datagrams from one host to an address on another; how many arrived? */
async function udpDelivered(
  lab: Lab,
  from: HostName,
  to: HostName,
  address: string,
  count = 20,
): Promise<number> {
  const family = address.includes(':') ? '6' : '4';
  const listener = lab.exec(to, ['python3', '-c', LISTEN, UDP_PORT, '1.0', family], { timeoutMs: 15_000 });
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

/** ssh options without -F: exactly this identity and this known_hosts, strict, no prompts. */
function sshWith(key: string, knownHosts: string): string[] {
  return [
    'ssh',
    ...['-i', key, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${knownHosts}`],
    ...['-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'],
  ];
}

/** The lab's ssh_config with another known_hosts (-F reaches the -J hops; -o would not). */
function sshConfigWith(lab: Lab, name: string, knownHosts: string): string {
  const text = readFileSync(lab.sshConfigFile, 'utf8');
  const path = join(lab.dir, name);
  writeFileSync(path, text.replace(/UserKnownHostsFile .*/, `UserKnownHostsFile ${knownHosts}`), {
    mode: 0o600,
  });
  return path;
}

/** A copy of the cert-only key without its certificate: a key no lab host knows. */
function bareKey(lab: Lab): string {
  const path = join(lab.dir, 'id_cert_only_without_cert');
  copyFileSync(lab.certOnlyKeyFile, path);
  chmodSync(path, 0o600);
  return path;
}

const reason = e2eSkipReason();
const usersReason = reason ?? findLabUsers().missing;

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

  describe('host names', () => {
    it('resolves every lab name in every namespace from /etc/netns, and no other name', async () => {
      const { lab } = ctx;
      for (const from of ['client', 'bastion'] as const) {
        const r = await lab.exec(from, ['getent', 'hosts', 'target.lab.test']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.trim().split(/\s+/)).toEqual(['203.0.113.10', 'target.lab.test']);
      }
      const b = await lab.exec('target', ['getent', 'hosts', lab.hosts.bastion.dnsName]);
      expect(b.stdout.split(/\s+/)[0]).toBe(lab.hosts.bastion.sshAddress);
      const hosts = readFileSync(`/etc/netns/${lab.hosts.client.ns}/hosts`, 'utf8');
      expect(hosts).toContain('192.0.2.66\toutsider.lab.test');
      // A name the lab does not have is not found, at once (no resolver to wait for).
      const started = Date.now();
      const none = await lab.exec('client', ['getent', 'hosts', 'nosuch.lab.test']);
      expect(none.code).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('lets ssh -F reach the bastion by name, and the target through -J by name', async () => {
      const { lab } = ctx;
      const b = await lab.exec('client', lab.sshArgv('bastion', ['ip netns identify'], { names: true }));
      expect(b.code, b.stderr).toBe(0);
      expect(b.stdout.trim()).toBe(lab.hosts.bastion.ns);
      const argv = lab.sshArgv('target', ['ip netns identify'], { names: true });
      expect(argv.slice(3, 6)).toEqual(['-J', 'root@bastion.lab.test', 'root@target.lab.test']);
      const t = await lab.exec('client', argv);
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout.trim()).toBe(lab.hosts.target.ns);
    });

    it('writes a config with names on request; the default file keeps addresses', () => {
      const text = ctx.lab.configText({ names: true });
      expect(text).toMatch(/ {2}target:\n {4}address: target\.lab\.test\n {4}via: \[bastion\]/);
      expect(text).toContain('    address: bastion.lab.test\n');
      expect(text).not.toMatch(/address: \d/);
      expect(readFileSync(ctx.lab.configFile, 'utf8')).toContain('    address: 192.0.2.1\n');
    });
  });

  describe('certificates', () => {
    it('offers host certificates that known_hosts.ca alone trusts, by address and by name', async () => {
      const { lab } = ctx;
      const ca = readFileSync(lab.caKnownHostsFile, 'utf8');
      expect(ca).toMatch(
        /^@cert-authority \*\.lab\.test,192\.0\.2\.\*,198\.51\.100\.\*,203\.0\.113\.\*,2001:db8:\* ssh-ed25519 \S+\n$/,
      );
      const config = sshConfigWith(lab, 'ssh_config.ca', lab.caKnownHostsFile);
      for (const names of [false, true]) {
        for (const host of ['bastion', 'target'] as const) {
          const argv = [
            'ssh',
            '-v',
            '-F',
            config,
            ...lab.sshArgv(host, ['ip netns identify'], { names }).slice(3),
          ];
          const r = await lab.exec('client', argv);
          expect(r.code, r.stderr).toBe(0);
          expect(r.stdout.trim()).toBe(lab.hosts[host].ns);
          expect(r.stderr).toContain('Server host certificate: ssh-ed25519-cert-v01@openssh.com');
        }
      }
      // The same line with another CA's key is refused: the CA really is checked.
      await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(lab.dir, 'other_ca')]);
      const other = readFileSync(join(lab.dir, 'other_ca.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
      const wrongCa = join(lab.dir, 'known_hosts.other-ca');
      writeFileSync(wrongCa, ca.replace(/ssh-ed25519 \S+/, other));
      const wrong = await lab.exec('client', [
        ...sshWith(lab.keyFile, wrongCa),
        'root@bastion.lab.test',
        'true',
      ]);
      expect(wrong.code).toBe(255);
      expect(wrong.stderr).toMatch(/Host key verification failed/);
    });

    it('keeps plain known_hosts working with OpenSSH while sshd also offers a certificate', async () => {
      const { lab } = ctx;
      // keyscan -c prints the certificates a server offers (without the host name).
      const scan = await lab.exec('client', ['ssh-keyscan', '-c', '-T', '5', '192.0.2.1']);
      expect(scan.stdout).toMatch(/^ssh-ed25519-cert-v01@openssh\.com AAAA/m);
      const r = await lab.exec('client', [
        ...sshWith(lab.keyFile, lab.knownHostsFile),
        '-v',
        'root@192.0.2.1',
        'true',
      ]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Host '192\.0\.2\.1' is known and matches the ED25519 host key/);
    });

    it('logs in with the cert-only key and its certificate, and is refused without the certificate', async () => {
      const { lab } = ctx;
      const pub = readFileSync(`${lab.certOnlyKeyFile}.pub`, 'utf8').split(' ')[1] ?? '';
      expect(pub).not.toBe('');
      expect(readFileSync(join(lab.dir, 'authorized_keys'), 'utf8')).not.toContain(pub);
      expect(existsSync(`${lab.certOnlyKeyFile}-cert.pub`)).toBe(true);
      const ok = await lab.exec('client', [
        ...sshWith(lab.certOnlyKeyFile, lab.knownHostsFile),
        'root@192.0.2.1',
        'id -un',
      ]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout.trim()).toBe('root');
      const bare = await lab.exec('client', [
        ...sshWith(bareKey(lab), lab.knownHostsFile),
        'root@192.0.2.1',
        'id -un',
      ]);
      expect(bare.code).toBe(255);
      expect(bare.stderr).toMatch(/Permission denied \(publickey\)/);
    });
  });

  describe.skipIf(usersReason)('test users', () => {
    // Each shell proves itself: $0 and the version variables only it sets (fish has no $0).
    const expected: Record<string, { probe: string; ran: RegExp }> = {
      'mctl-bash': {
        probe: 'echo "ran:$0:${BASH_VERSION-}:${ZSH_VERSION-}"',
        ran: /^ran:bash:\d+\.\d[^:]*:$/,
      },
      'mctl-dash': { probe: 'echo "ran:$0:${BASH_VERSION-}:${ZSH_VERSION-}"', ran: /^ran:sh::$/ },
      'mctl-zsh': { probe: 'echo "ran:$0:${BASH_VERSION-}:${ZSH_VERSION-}"', ran: /^ran:zsh::\d+\.\d/ },
      'mctl-fish': { probe: 'echo ran:fish:$FISH_VERSION', ran: /^ran:fish:\d+\.\d/ },
    };

    it('logs each login user in on the target, where its own login shell runs the command', async () => {
      const { lab } = ctx;
      expect(lab.loginUsers.map((u) => u.name)).toEqual(LOGIN_USERS.map((u) => u.name));
      for (const u of LOGIN_USERS) {
        const e = expected[u.name];
        if (!e) throw new Error(`no probe for ${u.name}`);
        const remote = `id -un; getent passwd $USER | cut -d: -f7; ${e.probe}`;
        const r = await lab.exec('client', lab.sshArgv('target', [remote], { user: u.name, names: true }));
        expect(r.code, `${u.name}: ${r.stderr}`).toBe(0);
        const [who, shell, ran] = r.stdout.trim().split('\n');
        expect(who).toBe(u.name);
        expect(shell).toBe(u.shell);
        expect(ran, u.name).toMatch(e.ran);
      }
    });

    it('logs a login user in with the cert-only key through its certificate', async () => {
      const { lab } = ctx;
      const argv = [
        ...sshWith(lab.certOnlyKeyFile, lab.caKnownHostsFile),
        'mctl-dash@bastion.lab.test',
        'id -un',
      ];
      const r = await lab.exec('client', argv);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('mctl-dash');
    });

    it('runs a command as the client user with a clean environment', async () => {
      const { lab } = ctx;
      const u = lab.clientUser;
      if (!u) throw new Error('no client user');
      const r = await run(
        lab.clientCommandAs(['sh', '-c', 'id -u; id -g; env; ip netns identify'], { EXTRA: 'x' }),
      );
      expect(r.code, r.stderr).toBe(0);
      const [uid, gid, ...env] = r.stdout.trim().split('\n');
      expect(env.pop()).toBe(lab.hosts.client.ns);
      expect([Number(uid), Number(gid)]).toEqual([u.uid, u.gid]);
      expect(u.uid).not.toBe(0);
      expect(env).toContain(`HOME=${u.home}`);
      expect(env).toContain('USER=mctl-client');
      expect(env).toContain('EXTRA=x');
      const allowed = ['HOME', 'USER', 'LOGNAME', 'PATH', 'SHELL', 'LANG', 'EXTRA', 'PWD'];
      expect(env.map((l) => l.split('=')[0]).filter((n) => !allowed.includes(n ?? ''))).toEqual([]);
      expect((await lab.exec('client', ['id', '-u'])).stdout.trim()).toBe('0');
      // Root's key is out of its reach; its own copy is its alone.
      expect((await lab.exec('client', lab.asClientUser(['cat', lab.keyFile]))).code).not.toBe(0);
      const files = lab.clientUserFiles;
      if (!files) throw new Error('no client user files');
      for (const [path, mode] of [
        [files.dir, 0o700],
        [files.keyFile, 0o600],
        [files.knownHostsFile, 0o600],
      ] as const) {
        const st = statSync(path);
        expect([st.uid, st.mode & 0o777], path).toEqual([u.uid, mode]);
      }
    });

    it("gives the client user this lab's own home, over its passwd home", async () => {
      const { lab } = ctx;
      const u = lab.clientUser;
      const files = lab.clientUserFiles;
      if (!u || !files) throw new Error('no client user');
      const name = `.lab-home-${lab.runId}`;
      // ~ as OpenSSH expands it: from the passwd entry, not $HOME.
      const script = `home=$(getent passwd "$(id -un)" | cut -d: -f6); touch "$home/${name}"; echo "$home"`;
      const r = await lab.exec('client', lab.asClientUser(['sh', '-c', script]));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(u.home);
      expect(existsSync(join(files.home, name))).toBe(true);
      expect(existsSync(join(u.home, name))).toBe(false);
      const st = statSync(files.home);
      expect([st.uid, st.mode & 0o777]).toEqual([u.uid, 0o700]);
    });

    it('lets the client user ssh with its own key and known_hosts, plain and by CA', async () => {
      const { lab } = ctx;
      const f = lab.clientUserFiles;
      if (!f) throw new Error('no client user files');
      const plain = [...sshWith(f.keyFile, f.knownHostsFile), 'root@bastion.lab.test', 'id -un'];
      const r = await lab.exec('client', lab.asClientUser(plain));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('root');
      const cert = [...sshWith(f.certOnlyKeyFile, f.caKnownHostsFile), 'mctl-bash@192.0.2.1', 'id -un'];
      const c = await lab.exec('client', lab.asClientUser(cert));
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout.trim()).toBe('mctl-bash');
    });

    it('runs a tmux pane command as the client user', async () => {
      const { lab } = ctx;
      const command = ['bash', '--norc', '--noprofile'];
      const tmux = await Tmux.start(lab, { command, asClientUser: true, name: 'as-user' });
      try {
        await tmux.sendKeys('echo "who-$(id -un)-$(id -u)-$TERM"');
        await tmux.sendEnter();
        await tmux.waitFor(`who-mctl-client-${lab.clientUser?.uid}-screen`);
      } finally {
        await tmux.kill();
      }
    });
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
    // And a hosts dir whose namespace and record are gone (a crash between the two).
    const orphanDir = `/etc/netns/mctl-${randomBytes(3).toString('hex')}-client`;
    // Staged and looked at under the registry's lock, which cleanupStale takes too: a lab
    // created meanwhile by another test file would otherwise remove them before findLeftovers sees them.
    const seen = await withRegistryLock(async () => {
      writeRecord({ ...stale.record(), owner: deadOwner });
      mkdirSync(orphanDir);
      return findLeftovers();
    });
    expect(seen.etcNetns).toContain(orphanDir);
    expect(seen.namespaces).toContain(orphanDir); // so the suite's last check sees it too
    expect(seen.etcNetns).toContain(`/etc/netns/${stale.hosts.target.ns}`);
    const fresh = await Lab.create();
    try {
      const names = await namespaces();
      for (const h of Object.values(stale.hosts) as { ns: string }[]) {
        expect(names).not.toContain(h.ns);
        expect(existsSync(`/etc/netns/${h.ns}`)).toBe(false);
      }
      expect(existsSync(orphanDir)).toBe(false);
      expect(existsSync(`/etc/netns/${fresh.hosts.client.ns}/hosts`)).toBe(true);
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
    const etcDirs = (Object.values(lab.hosts) as { ns: string }[]).map((h) => `/etc/netns/${h.ns}`);
    expect(etcDirs.filter((d) => existsSync(d))).toEqual(etcDirs);
    await lab.destroy();
    await lab.destroy(); // idempotent
    const names = await namespaces();
    for (const h of Object.values(lab.hosts) as { ns: string }[]) expect(names).not.toContain(h.ns);
    expect(etcDirs.filter((d) => existsSync(d))).toEqual([]);
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(lab.dir)).toBe(false);
    expect(readRecords().map((r) => r.runId)).not.toContain(lab.runId);
  });
});

describe.skipIf(reason)('a lab whose bastion asks for a one-time code after the key', () => {
  const ctx = useLab({ kbdInteractive: ['bastion'] });
  const interactiveSsh = (lab: Lab): string[] => [
    ...['ssh', '-F', lab.sshConfigFile, '-o', 'BatchMode=no', '-o', 'NumberOfPasswordPrompts=1'],
    'root@192.0.2.1',
    'echo otp-ok-$((6 * 7))',
  ];

  it('accepts the key, then wants a code; an unknown key gets no prompt; other hosts want no code', async () => {
    const { lab } = ctx;
    expect(lab.otpCode).toMatch(/^\d{6}$/);
    // Batch mode cannot answer a prompt: the key was accepted, the code is missing.
    const batch = await lab.exec('client', lab.sshArgv('bastion', ['true']));
    expect(batch.code).toBe(255);
    expect(batch.stderr).toMatch(/Permission denied \(keyboard-interactive\)/);
    const unknown = await lab.exec('client', [
      ...sshWith(bareKey(lab), lab.knownHostsFile),
      'root@192.0.2.1',
      'true',
    ]);
    expect(unknown.code).toBe(255);
    expect(unknown.stderr).toMatch(/Permission denied \(publickey\)/);
    const outsider = await lab.exec('client', lab.sshArgv('outsider', ['id -un']));
    expect(outsider.code, outsider.stderr).toBe(0);
  });

  it('tracks the sshd itself though it starts through unshare; only its mounts see the PAM file', async () => {
    const { lab } = ctx;
    const alive = lab.record().pids.filter(isAlive);
    expect(alive.map((p) => readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim())).toEqual([
      'sshd',
      'sshd',
      'sshd',
    ]);
    const pamOf: Record<string, string> = {};
    for (const p of alive) {
      const ns = (await run(['ip', 'netns', 'identify', String(p.pid)])).stdout.trim();
      pamOf[ns] = (await run(['nsenter', '-t', String(p.pid), '-m', 'cat', '/etc/pam.d/sshd'])).stdout;
    }
    expect(pamOf[lab.hosts.bastion.ns]).toContain('pam_exec.so expose_authtok');
    expect(pamOf[lab.hosts.target.ns]).not.toContain('moshctl lab');
    expect(pamOf[lab.hosts.target.ns]).toContain('pam'); // the machine's own file, read through the same way
    expect(readFileSync('/etc/pam.d/sshd', 'utf8')).not.toContain('moshctl lab');
  });

  it('logs in when the right code is typed at the prompt', async () => {
    const { lab } = ctx;
    const tmux = await Tmux.start(lab, { command: interactiveSsh(lab), name: 'otp-right' });
    try {
      await tmux.waitFor(/Password:/);
      await tmux.sendKeys(lab.otpCode);
      await tmux.sendEnter();
      await tmux.waitFor('otp-ok-42');
      expect(await eventually(async () => (await tmux.exitStatus()) === 0)).toBe(true);
    } finally {
      await tmux.kill();
    }
  });

  it('refuses a wrong code', async () => {
    const { lab } = ctx;
    const wrong = [...lab.otpCode].map((d) => String((Number(d) + 1) % 10)).join('');
    const tmux = await Tmux.start(lab, { command: interactiveSsh(lab), name: 'otp-wrong' });
    try {
      await tmux.waitFor(/Password:/);
      await tmux.sendKeys(wrong);
      await tmux.sendEnter();
      const screen = await tmux.waitFor(/Permission denied/);
      expect(screen).not.toContain('otp-ok-42');
      expect(await eventually(async () => (await tmux.exitStatus()) === 255)).toBe(true);
    } finally {
      await tmux.kill();
    }
  });
});

describe.skipIf(reason)('a lab that hides python3 from the bastion', () => {
  // The system's python3, not a pyenv shim that may come first on this machine's PATH.
  const python = reason ? '/usr/bin/python3' : realProgramPath('python3');
  const ctx = useLab({ hide: { bastion: [python] } });
  // Root's .bashrc may put pyenv first on PATH; the hidden binary is the system's.
  const PY = 'PATH=/usr/bin:/bin; export PATH; python3 -c "print(6 * 7)"';

  it("fails to run python3 in the bastion's sessions, and runs it on the target and on the machine", async () => {
    const { lab } = ctx;
    const hidden = await lab.exec('client', lab.sshArgv('bastion', [PY]));
    expect(hidden.code).not.toBe(0);
    expect(hidden.stdout).not.toContain('42');
    const shown = await lab.exec('client', lab.sshArgv('target', [PY]));
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout.trim()).toBe('42');
    // Only the bastion sshd's private mounts hide it: not its namespace, not this machine.
    const inNs = await lab.exec('bastion', [python, '-c', 'print(6 * 7)']);
    expect(inNs.stdout.trim()).toBe('42');
    expect((await run([python, '-c', 'print(6 * 7)'])).stdout.trim()).toBe('42');
  });
});

describe.skipIf(reason)('a lab with access brokers to the target and the bastion', () => {
  const ctx = useLab({ broker: ['target', 'bastion'] });
  const INSTANCE = 'i-0abc123.broker.internal';

  /** The bridge's socat listener among the lab's tracked pids. */
  function bridgePid(lab: Lab, host: HostName): number {
    const socket = lab.brokerSocket(host);
    const found = lab
      .record()
      .pids.filter(isAlive)
      .find((p) => readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').includes(`UNIX-LISTEN:${socket},`));
    if (!found) throw new Error(`no bridge for ${host}`);
    return found.pid;
  }

  it('reaches the target through its broker with ssh -F, from a client with no path to it', async () => {
    const { lab } = ctx;
    const cfg = lab.brokerSshConfig({
      hosts: [{ alias: 'devbox-broker', host: 'target', hostName: INSTANCE }],
    });
    expect(cfg.text).toContain(
      `Host devbox-broker\n  HostName ${INSTANCE}\n  ProxyCommand nc -U ${lab.brokerSocket('target')}\n  User root\n`,
    );
    expect(lab.brokerSocket()).toBe(lab.brokerSocket('target')); // the first brokered host
    expect(Buffer.byteLength(lab.brokerSocket('bastion'))).toBeLessThanOrEqual(104);
    const st = statSync(lab.brokerSocket('target'));
    expect([st.isSocket(), st.mode & 0o777]).toEqual([true, 0o666]);
    expect(statSync(join(lab.dir, 'broker')).mode & 0o777).toBe(0o711);
    // No name, no route, nothing on the client's own loopback: only the socket leads there.
    const started = Date.now();
    const lookup = await lab.exec('client', ['getent', 'hosts', INSTANCE]);
    expect(lookup.code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(await lab.canReach('client', lab.hosts.target.sshAddress)).toBe(false);
    expect(await lab.canReach('client', '127.0.0.1')).toBe(false);
    const r = await lab.exec('client', [
      'ssh',
      '-F',
      cfg.path,
      'devbox-broker',
      'ip netns identify; echo "$SSH_CONNECTION"',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [ns, conn] = r.stdout.trim().split('\n');
    expect(ns).toBe(lab.hosts.target.ns);
    expect(conn).toMatch(/^127\.0\.0\.1 \d+ 127\.0\.0\.1 22$/);
    // Its usual address still works, through the bastion.
    const plain = await lab.exec('client', lab.sshArgv('target', ['true']));
    expect(plain.code, plain.stderr).toBe(0);
  });

  it("checks the host key under the broker's HostName: the bastion's key at the target's broker fails", async () => {
    const { lab } = ctx;
    const cfg = lab.brokerSshConfig({
      name: 'mixup_ssh_config',
      hosts: [{ alias: 'mixup', host: 'bastion', hostName: 'i-0mixup.broker.internal' }],
    });
    const right = await lab.exec('client', ['ssh', '-F', cfg.path, 'mixup', 'ip netns identify']);
    expect(right.code, right.stderr).toBe(0);
    expect(right.stdout.trim()).toBe(lab.hosts.bastion.ns);
    writeFileSync(
      cfg.path,
      cfg.text.replace(lab.brokerProxyCommand('bastion'), lab.brokerProxyCommand('target')),
    );
    const wrong = await lab.exec('client', ['ssh', '-F', cfg.path, 'mixup', 'true']);
    expect(wrong.code).toBe(255);
    expect(wrong.stderr).toMatch(/HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  });

  it('jumps to the target through the brokered bastion (ProxyJump to a ProxyCommand host)', async () => {
    const { lab } = ctx;
    const cfg = lab.brokerSshConfig({
      name: 'jump_ssh_config',
      hosts: [{ alias: 'bastion-broker', host: 'bastion', hostName: 'i-0bastion.broker.internal' }],
      jumps: [{ alias: 'devbox', host: 'target', via: 'bastion-broker' }],
    });
    expect(cfg.text).toContain('Host devbox\n  HostName target.lab.test\n  ProxyJump bastion-broker\n');
    expect(await lab.canReach('client', lab.hosts.bastion.sshAddress)).toBe(true); // not used here
    const r = await lab.exec('client', [
      'ssh',
      '-F',
      cfg.path,
      'devbox',
      'ip netns identify; echo "$SSH_CONNECTION"',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [ns, conn] = r.stdout.trim().split('\n');
    expect(ns).toBe(lab.hosts.target.ns);
    expect(conn).toMatch(/^203\.0\.113\.1 /); // from the bastion
    const hop = await lab.exec('client', ['ssh', '-F', cfg.path, 'bastion-broker', 'echo "$SSH_CONNECTION"']);
    expect(hop.code, hop.stderr).toBe(0);
    expect(hop.stdout).toMatch(/^127\.0\.0\.1 /); // the hop itself through its broker
  });

  it.skipIf(usersReason)(
    'lets the client user reach the target through the broker with its own files',
    async () => {
      const { lab } = ctx;
      const u = lab.clientUser;
      if (!u) throw new Error('no client user');
      const cfg = lab.brokerSshConfig({
        clientUser: true,
        hosts: [{ alias: 'devbox-broker', hostName: INSTANCE }],
      });
      for (const path of [cfg.path, cfg.knownHostsFile]) {
        const st = statSync(path);
        expect([st.uid, st.mode & 0o777], path).toEqual([u.uid, 0o600]);
      }
      expect(cfg.text).toContain(`IdentityFile ${lab.clientUserFiles?.keyFile ?? '?'}`);
      const r = await lab.exec(
        'client',
        lab.asClientUser(['ssh', '-F', cfg.path, 'devbox-broker', 'ip netns identify']),
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(lab.hosts.target.ns);
    },
  );

  it('offers failing brokers: one that denies at once, one that hangs, one that wants an SSO login first', async () => {
    const { lab } = ctx;
    const cfg = lab.brokerSshConfig({
      name: 'faults_ssh_config',
      connectTimeout: 2,
      hosts: [
        { alias: 'denied', hostName: INSTANCE, proxyCommand: lab.brokerFaultCommand('denied') },
        { alias: 'hangs', hostName: 'i-0hang.broker.internal', proxyCommand: lab.brokerFaultCommand('hang') },
        { alias: 'sso', hostName: 'i-0sso.broker.internal', proxyCommand: lab.brokerFaultCommand('sso') },
      ],
    });
    let started = Date.now();
    const denied = await lab.exec('client', ['ssh', '-F', cfg.path, 'denied', 'true']);
    expect(denied.code).toBe(255);
    expect(denied.stderr).toContain(`broker: access denied for ${INSTANCE}`);
    expect(Date.now() - started).toBeLessThan(2000);

    expect(await lab.hangingBrokerPids()).toEqual([]);
    const hanging = lab.exec('client', ['ssh', '-F', cfg.path, 'hangs', 'true'], { timeoutMs: 15_000 });
    expect(await eventually(async () => (await lab.hangingBrokerPids()).length === 1)).toBe(true);
    const [sleeper] = await lab.hangingBrokerPids();
    const h = await hanging; // ConnectTimeout bounds the wait for the banner
    expect(h.timedOut).toBe(false);
    expect(h.code).toBe(255);
    expect(h.stderr).toMatch(/timed out/i);
    // ssh hangs up on its ProxyCommand as it exits.
    expect(await eventually(async () => (await lab.hangingBrokerPids()).length === 0, 2000)).toBe(true);
    expect(isAlive({ pid: sleeper ?? 0 })).toBe(false);

    started = Date.now();
    const sso = await lab.exec('client', ['ssh', '-F', cfg.path, 'sso', 'ip netns identify']);
    expect(sso.code, sso.stderr).toBe(0);
    expect(sso.stdout.trim()).toBe(lab.hosts.target.ns);
    expect(sso.stderr).toContain(`Open ${BROKER_SSO_URL} to log in`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('refuses to broker a host without sshd, before building anything', async () => {
    await expect(Lab.create({ broker: ['client'] })).rejects.toThrow(
      /broker: "client" is not a host with sshd/,
    );
  });

  it('stops the bridge and the child of every open connection at destroy, by pid', async () => {
    const lab = await Lab.create({ broker: ['target'] });
    let destroyed = false;
    try {
      const cfg = lab.brokerSshConfig({ hosts: [{ alias: 'devbox-broker' }] });
      const listener = bridgePid(lab, 'target');
      lab.spawn('client', ['ssh', '-F', cfg.path, 'devbox-broker', 'sleep 1000']);
      lab.spawn('client', ['ssh', '-F', cfg.path, 'devbox-broker', 'sleep 1000']);
      expect(await eventually(() => Promise.resolve(childrenOf(listener).length === 2))).toBe(true);
      const bridge = [listener, ...childrenOf(listener)].map(refOf);
      const clients = (await lab.pidsIn('client')).map(refOf);
      expect(clients.length).toBeGreaterThanOrEqual(4); // ssh and its nc, twice
      // The suite's last check would see them (a lab of this very process counts as left behind).
      const ours = (pids: number[]): number[] => pids.filter((p) => bridge.some((b) => b.pid === p));
      const before = (await findLeftovers()).processes.map((p) => p.pid);
      expect(ours(before).sort()).toEqual(bridge.map((b) => b.pid).sort());
      await lab.destroy();
      destroyed = true;
      expect(bridge.filter(isAlive)).toEqual([]);
      expect(clients.filter(isAlive)).toEqual([]);
      expect(existsSync(lab.brokerSocket())).toBe(false);
      expect(ours((await findLeftovers()).processes.map((p) => p.pid))).toEqual([]);
    } finally {
      if (!destroyed) await lab.destroy();
    }
  });
});

describe.skipIf(reason)(
  'a lab with an IPv4-only client, a dual-stack bastion and an IPv6-only target',
  () => {
    const ctx = useLab({ ipv6: 'behind-bastion' });
    const TARGET6 = '2001:db8:113::10';

    it('gives each host only the families the plan says: no IPv6 on the client, no IPv4 on the target', async () => {
      const { lab } = ctx;
      expect(lab.hosts.target.sshAddress).toBe(TARGET6);
      expect(lab.hosts.target.addresses).toEqual([TARGET6]);
      expect(lab.hosts.bastion.addresses).toEqual(['192.0.2.1', '2001:db8:113::1']);
      const client6 = await lab.exec('client', ['ip', '-6', '-o', 'addr', 'show']);
      expect(client6.stdout.trim()).toBe('');
      const target4 = await lab.exec('target', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(target4.stdout.trim()).toBe('');
      // Usable at once: no address still tentative (DAD) anywhere.
      for (const host of ['bastion', 'target'] as const) {
        const r = await lab.exec(host, ['ip', '-6', '-o', 'addr', 'show', 'tentative']);
        expect(r.stdout.trim()).toBe('');
      }
    });

    it('resolves target.lab.test to its IPv6 address in every namespace', async () => {
      const { lab } = ctx;
      for (const from of ['client', 'bastion', 'target', 'outsider'] as const) {
        const r = await lab.exec(from, ['getent', 'hosts', 'target.lab.test']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.trim().split(/\s+/)).toEqual([TARGET6, 'target.lab.test']);
      }
    });

    it('reaches the target over IPv6 through the bastion (-J), by address and by name, against a hashed known_hosts entry', async () => {
      const { lab } = ctx;
      const knownHosts = readFileSync(lab.knownHostsFile, 'utf8');
      expect(knownHosts).not.toContain(TARGET6);
      const h = await run(['ssh-keygen', '-F', TARGET6, '-f', lab.knownHostsFile]);
      expect(h.stdout).toMatch(/^\|1\|\S+ ssh-ed25519 /m);
      for (const names of [false, true]) {
        const argv = lab.sshArgv('target', ['ip netns identify; echo $SSH_CONNECTION'], { names });
        expect(argv.slice(3, 6)).toEqual(
          names
            ? ['-J', 'root@bastion.lab.test', 'root@target.lab.test']
            : ['-J', 'root@192.0.2.1', `root@${TARGET6}`],
        );
        const r = await lab.exec('client', argv);
        expect(r.code, r.stderr).toBe(0);
        const [ns, conn] = r.stdout.trim().split('\n');
        expect(ns).toBe(lab.hosts.target.ns);
        // The last leg is IPv6: from the bastion's address on that link to the target's.
        expect(conn).toMatch(new RegExp(`^2001:db8:113::1 \\d+ ${TARGET6} 22$`));
      }
      // The bastion's key under the target's address is refused: the entries really are checked.
      const wrong = await lab.exec('client', [
        ...lab.sshArgv('target').slice(0, -1),
        '-o',
        'HostKeyAlias=192.0.2.1',
        `root@${TARGET6}`,
        'true',
      ]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.stderr).toMatch(/host key|HOST IDENTIFICATION/i);
    });

    it('does not let the client reach the target itself, over TCP or UDP; the bastion does', async () => {
      const { lab } = ctx;
      expect(await lab.canReach('bastion', TARGET6)).toBe(true);
      expect(await lab.canReach('client', TARGET6)).toBe(false);
      expect(await udpDelivered(lab, 'bastion', 'target', TARGET6)).toBe(20);
      expect(await udpDelivered(lab, 'client', 'target', TARGET6)).toBe(0);
      const r = await lab.exec('client', [
        ...lab.sshArgv('bastion').slice(0, -1),
        '-o',
        'ConnectTimeout=2',
        `root@${TARGET6}`,
        'true',
      ]);
      expect(r.code).not.toBe(0);
    });

    it('writes a moshproxy.yaml naming the target by its IPv6 address behind the bastion', () => {
      const yaml = readFileSync(ctx.lab.configFile, 'utf8');
      expect(yaml).toContain(`  target:\n    address: ${TARGET6}\n    via: [bastion]\n`);
      expect(ctx.lab.configText({ names: true })).toContain('  target:\n    address: target.lab.test\n');
    });

    it('roams the IPv4-only client and takes its link down and up, the target still reached after each', async () => {
      const { lab } = ctx;
      const ssh = lab.sshArgv('target', ['echo $SSH_CONNECTION'], { names: true });
      const next = await lab.roam();
      expect(lab.hosts.client.addresses).toEqual([next]);
      const r = await lab.exec('client', ssh);
      expect(r.code, r.stderr).toBe(0);
      await lab.linkDown();
      expect(await lab.canReach('client', '192.0.2.1')).toBe(false);
      await lab.linkUp();
      expect(await eventually(() => lab.canReach('client', '192.0.2.1'))).toBe(true);
      expect((await lab.exec('client', ssh)).code).toBe(0);
      await lab.roam('192.0.2.10');
    });
  },
);

describe.skipIf(reason)('a lab where the client reaches an IPv6-only target directly', () => {
  const ctx = useLab({ ipv6: 'direct' });
  const TARGET6 = '2001:db8:113::10';

  it('is dual-stack on the LAN, IPv6-only at the target, and only the bastion forwards, IPv6 only', async () => {
    const { lab } = ctx;
    expect(lab.hosts.client.addresses).toEqual(['192.0.2.10', '2001:db8:2::10']);
    expect(lab.hosts.target.addresses).toEqual([TARGET6]);
    const forwarding = async (host: HostName): Promise<string> =>
      (
        await lab.exec(host, ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'])
      ).stdout.replace(/\s+/g, ' ');
    expect(await forwarding('bastion')).toBe('0 1 ');
    for (const h of ['client', 'target', 'outsider'] as const) expect(await forwarding(h)).toBe('0 0 ');
    const target4 = await lab.exec('target', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(target4.stdout.trim()).toBe('');
    const tentative = await lab.exec('client', ['ip', '-6', '-o', 'addr', 'show', 'tentative']);
    expect(tentative.stdout.trim()).toBe('');
  });

  it('lets ssh -6 reach the target from the client itself, by address and by name, with no jump host', async () => {
    const { lab } = ctx;
    for (const names of [false, true]) {
      const argv = lab.sshArgv('target', ['ip netns identify; echo $SSH_CONNECTION'], { names });
      expect(argv).not.toContain('-J');
      const r = await lab.exec('client', ['ssh', '-6', ...argv.slice(1)]);
      expect(r.code, r.stderr).toBe(0);
      const [ns, conn] = r.stdout.trim().split('\n');
      expect(ns).toBe(lab.hosts.target.ns);
      expect(conn).toMatch(new RegExp(`^2001:db8:2::10 \\d+ ${TARGET6} 22$`));
    }
    expect(await udpDelivered(lab, 'client', 'target', TARGET6)).toBe(20);
    const yaml = readFileSync(lab.configFile, 'utf8');
    expect(yaml).toMatch(new RegExp(`  target:\\n    address: ${TARGET6}\\n(?!    via)`));
  });

  it('roams both of the client addresses, and an outage cuts IPv6 too', async () => {
    const { lab } = ctx;
    const ssh = ['ssh', '-6', ...lab.sshArgv('target', ['echo $SSH_CONNECTION']).slice(1)];
    const next = await lab.roam();
    expect(next).toBe('192.0.2.11');
    expect(lab.hosts.client.addresses).toEqual(['192.0.2.11', '2001:db8:2::11']);
    const addr = await lab.exec('client', ['ip', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    expect(addr.stdout).toContain('2001:db8:2::11/64');
    expect(addr.stdout).not.toContain('2001:db8:2::10/');
    expect(addr.stdout).not.toContain('192.0.2.10/');
    const r = await lab.exec('client', ssh);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^2001:db8:2::11 /);
    await lab.linkDown();
    expect(await lab.canReach('client', TARGET6)).toBe(false);
    await lab.linkUp();
    expect(await eventually(() => lab.canReach('client', TARGET6))).toBe(true);
    await lab.roam('192.0.2.10');
    expect(lab.hosts.client.addresses).toEqual(['192.0.2.10', '2001:db8:2::10']);
    expect((await lab.exec('client', ssh)).stdout).toMatch(/^2001:db8:2::10 /);
  });

  it('refuses two bastions, before building anything', async () => {
    await expect(Lab.create({ ipv6: 'direct', bastions: 2 })).rejects.toThrow(/one bastion/);
  });
});

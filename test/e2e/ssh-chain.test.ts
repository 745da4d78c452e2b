// The SSH layer against a real OpenSSH server on loopback. One sshd serves
// every hop: a two-hop chain goes through itself (its second hop is reached by
// the first hop's forwardOut), which exercises the same code as a bastion.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import { EnvError } from '../../src/errors.js';
import { connectChain } from '../../src/ssh/connect.js';
import type { ConnectOptions } from '../../src/transport/types.js';
import { sshHost } from '../support/ssh-host.js';

const SSHD = '/usr/sbin/sshd';
const isRoot = process.getuid?.() === 0;
const skipReason = !isRoot
  ? 'needs root (sshd must run as root to log in as root)'
  : !existsSync(SSHD)
    ? `${SSHD} is missing (apt-get install openssh-server)`
    : undefined;
if (skipReason) console.warn(`skipping test/e2e/ssh-chain.test.ts: ${skipReason}`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/** Alive and not a zombie (an orphan reparented to a PID 1 that never reaps stays a zombie). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function keygen(file: string, type = 'ed25519', passphrase = ''): string {
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', 'moshctl-test', '-f', file]);
  return readFileSync(`${file}.pub`, 'utf8').trim();
}

async function rejection(p: Promise<unknown>): Promise<EnvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnvError);
  return err as EnvError;
}

describe.skipIf(skipReason !== undefined)('SSH chain against a real sshd', () => {
  let dir = '';
  let port = 0;
  let sshd: ChildProcess | undefined;
  let sshdPid: number | undefined;
  let sshdExited: Promise<void> = Promise.resolve();
  let sshdLog = '';
  let hostPub = '';
  let hostFingerprint = '';
  let clientKey = '';
  let wrongKey = '';
  let noForwardKey = '';
  let knownHosts = '';
  const noAgent: ConnectOptions = { agent: undefined };

  function host(name: string, over: Partial<SshHost> = {}): SshHost {
    return sshHost({
      name,
      ssh_name: '127.0.0.1',
      address: '127.0.0.1',
      port,
      identity_files: [clientKey],
      known_hosts: [knownHosts],
      identity_agent: undefined,
      ...over,
    });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moshctl-ssh-'));
    port = await freePort();
    hostPub = keygen(join(dir, 'host_ed25519'));
    hostFingerprint = execFileSync('ssh-keygen', ['-lf', join(dir, 'host_ed25519.pub')], {
      encoding: 'utf8',
    }).split(' ')[1] as string;
    clientKey = join(dir, 'client_ed25519');
    wrongKey = join(dir, 'wrong_ed25519');
    noForwardKey = join(dir, 'noforward_ed25519');
    writeFileSync(
      join(dir, 'authorized_keys'),
      `${keygen(clientKey)}\nno-port-forwarding ${keygen(noForwardKey)}\n`,
    );
    keygen(wrongKey);
    const [type, blob] = hostPub.split(' ');
    knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, `# test\n[127.0.0.1]:${port} ${type} ${blob}\n`);

    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${join(dir, 'host_ed25519')}`,
        'PidFile none',
        'UsePAM no',
        'StrictModes no',
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'AllowTcpForwarding yes',
        'LogLevel VERBOSE',
        '',
      ].join('\n'),
    );
    mkdirSync('/run/sshd', { recursive: true });
    const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    sshd = child;
    sshdPid = child.pid;
    sshdExited = new Promise((resolve) => child.on('exit', () => resolve()));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (sshdLog += d));
    for (let i = 0; i < 100 && !(await canConnect(port)); i++) {
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    if (!(await canConnect(port))) throw new Error(`sshd did not start:\n${sshdLog}`);
  });

  afterAll(async () => {
    try {
      if (sshd && sshd.exitCode === null && sshd.signalCode === null) {
        sshd.kill('SIGTERM');
        const late = await Promise.race([sshdExited.then(() => false), sleep(3000).then(() => true)]);
        if (late) {
          sshd.kill('SIGKILL');
          await sshdExited;
        }
      }
    } finally {
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    if (sshdPid !== undefined) expect(isAlive(sshdPid)).toBe(false);
  });

  it('connects one hop and runs a command', async () => {
    const hops: string[] = [];
    const chain = await connectChain([host('solo')], { ...noAgent, onHop: (h) => hops.push(h) });
    try {
      expect(hops).toEqual(['solo']);
      expect(await chain.exec('solo', 'echo hi')).toEqual({ stdout: 'hi\n', stderr: '', code: 0 });
      expect(await chain.exec('solo', 'cat; echo oops >&2; exit 3', { stdin: 'via stdin\n' })).toEqual({
        stdout: 'via stdin\n',
        stderr: 'oops\n',
        code: 3,
      });
      expect(chain.reachedAddress).toBe('127.0.0.1');
      expect(() => chain.exec('nope', 'true')).toThrow(/not part of this SSH chain/);
    } finally {
      await chain.close();
    }
  });

  it('connects two hops, the second through the first', async () => {
    const chain = await connectChain([host('bastion'), host('target')], noAgent);
    try {
      expect(chain.hostNames).toEqual(['bastion', 'target']);
      expect(chain.reachedAddress).toBe('127.0.0.1');
      expect((await chain.exec('target', 'echo two')).stdout).toBe('two\n');
      expect((await chain.exec('bastion', 'echo one')).stdout).toBe('one\n');
      // The target's session came in through the tunnel, from 127.0.0.1 as sshd sees it.
      expect((await chain.exec('target', 'echo $SSH_CONNECTION')).stdout).toMatch(
        new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${port}\\n$`),
      );
    } finally {
      await chain.close();
    }
  });

  it('accepts a hashed known_hosts entry', async () => {
    const salt = randomBytes(20);
    const mac = createHmac('sha1', salt).update(`[127.0.0.1]:${port}`).digest('base64');
    const [type, blob] = hostPub.split(' ');
    const file = join(dir, 'known_hosts_hashed');
    writeFileSync(file, `|1|${salt.toString('base64')}|${mac} ${type} ${blob}\n`);
    const chain = await connectChain([host('hashed', { known_hosts: [file] })], noAgent);
    await chain.close();
  });

  it('refuses an unknown host key, with its fingerprint and how to check it', async () => {
    const err = await rejection(
      connectChain([host('bastion'), host('newhost', { known_hosts: [join(dir, 'absent')] })], noAgent),
    );
    expect(err.message).toContain('newhost (root@127.0.0.1:');
    expect(err.message).toContain(hostFingerprint);
    expect(err.message).toContain('none of them exists');
    expect(err.hint).toContain(`ssh-keyscan -p ${port} 127.0.0.1`);
    expect(err.hint).toContain('run on bastion');
    expect(err.hint).toContain(join(dir, 'absent'));
    expect(err.where).toEqual({ host: 'newhost', step: 'connect', fault: 'host-key' });
  });

  it('refuses a changed host key, naming the file and line', async () => {
    const other = keygen(join(dir, 'other_host')).split(' ');
    const file = join(dir, 'known_hosts_changed');
    writeFileSync(file, `# a comment\n[127.0.0.1]:${port} ${other[0]} ${other[1]}\n`);
    const err = await rejection(connectChain([host('moved', { known_hosts: [file] })], noAgent));
    expect(err.message).toContain(`${file} line 2`);
    expect(err.message).toMatch(/man-in-the-middle/);
    expect(err.message).toContain(hostFingerprint);
  });

  it('reports a refused login with the user, host and key', async () => {
    const err = await rejection(connectChain([host('locked', { identity_files: [wrongKey] })], noAgent));
    expect(err.message).toContain(`locked (root@127.0.0.1:${port}) refused to log in user root`);
    expect(err.message).toContain(wrongKey);
    expect(err.hint).toContain(`${wrongKey}.pub`);
    expect(err.hint).toContain('authorized_keys');
  });

  it('accept-new records a new host key in the first known_hosts file, then still refuses a changed one', async () => {
    const file = join(dir, 'kh_accept_new');
    const second = join(dir, 'kh_untouched');
    const chain = await connectChain(
      [host('fresh', { known_hosts: [file, second], host_key_policy: 'accept-new', hash_known_hosts: true })],
      noAgent,
    );
    await chain.close();
    const recorded = readFileSync(file, 'utf8');
    expect(recorded).toMatch(/^\|1\|[^ ]+ ssh-ed25519 /);
    expect(existsSync(second)).toBe(false);
    // Recorded: a second connection with strict now passes.
    await (await connectChain([host('again', { known_hosts: [file] })], noAgent)).close();
    const [type] = hostPub.split(' ');
    writeFileSync(file, `[127.0.0.1]:${port} ${type} ${KEY_OTHER}\n`);
    const err = await rejection(
      connectChain([host('moved', { known_hosts: [file], host_key_policy: 'accept-new' })], noAgent),
    );
    expect(err.message).toContain('does not match');
  });

  it('offers every identity file in turn: a refused first key does not stop the second', async () => {
    const chain = await connectChain([host('two-keys', { identity_files: [wrongKey, clientKey] })], noAgent);
    expect((await chain.exec('two-keys', 'echo in')).stdout).toBe('in\n');
    await chain.close();
  });

  it.each([
    [
      'a user certificate',
      { certificate_files: ['/nonexistent/id-cert.pub'] },
      'an OpenSSH user certificate',
    ],
    ['a ProxyCommand', { proxy_command: 'nc %h %p' }, 'a ProxyCommand'],
  ] as const)(
    'refuses %s under ssh2 before connecting, naming ssh_client: openssh',
    async (_what, over, text) => {
      const err = await rejection(connectChain([host('limited', over as Partial<SshHost>)], noAgent));
      expect(err.message).toContain(`limited needs ${text}`);
      expect(err.hint).toContain('ssh_client: openssh');
    },
  );

  it('refuses a host known only through @cert-authority under ssh2, and a FIDO key', async () => {
    const ca = join(dir, 'kh_ca_only');
    writeFileSync(ca, `@cert-authority * ${hostPub.split(' ').slice(0, 2).join(' ')}\n`);
    const err = await rejection(connectChain([host('ca', { known_hosts: [ca] })], noAgent));
    expect(err.message).toContain('@cert-authority');
    expect(err.hint).toContain('ssh_client: openssh');
    // An sk- key cannot be made without a security key; its header is enough to be refused.
    const sk = join(dir, 'id_sk');
    writeFileSync(sk, skPrivateKeyText());
    const skErr = await rejection(connectChain([host('fido', { identity_files: [sk] })], noAgent));
    expect(skErr.message).toContain('FIDO security key');
    expect(skErr.hint).toContain('ssh_client: openssh');
  });

  it('refuses an encrypted key when no agent holds it, before connecting', async () => {
    const locked = join(dir, 'locked_ed25519');
    keygen(locked, 'ed25519', 'a passphrase');
    const err = await rejection(connectChain([host('enc', { identity_files: [locked] })], noAgent));
    expect(err.message).toContain('encrypted');
    expect(err.hint).toContain(`ssh-add ${locked}`);
    expect(err.message).not.toContain('a passphrase');
  });

  it('names the hop that cannot be reached, directly or through a hop', async () => {
    const closed = await freePort();
    const direct = await rejection(connectChain([host('nowhere', { port: closed })], noAgent));
    expect(direct.message).toBe(`cannot reach nowhere (root@127.0.0.1:${closed}): connection refused`);
    expect(direct.hint).toContain('this machine can reach it');

    const via = await rejection(connectChain([host('bastion'), host('behind', { port: closed })], noAgent));
    expect(via.message).toContain(`cannot reach behind (root@127.0.0.1:${closed}) through bastion`);
    expect(via.hint).toContain(`bastion can reach 127.0.0.1:${closed}`);
    expect(via.where.host).toBe('behind');
  });

  it('explains a hop that may not forward', async () => {
    const err = await rejection(
      connectChain([host('strict', { identity_files: [noForwardKey] }), host('target')], noAgent),
    );
    expect(err.message).toBe(
      `strict refused to forward a connection to target (127.0.0.1:${port}): administratively prohibited`,
    );
    expect(err.hint).toContain('AllowTcpForwarding');
    expect(err.hint).toContain('no-port-forwarding');
  });

  describe('with a server that accepts TCP and never speaks SSH', () => {
    let silent: Server | undefined;
    let silentPort = 0;
    let open = 0;
    beforeAll(async () => {
      const srv = createServer((sock) => {
        open++;
        sock.on('close', () => open--);
        sock.on('error', () => undefined);
        // Read (and drop) the client's banner, or the socket never sees the client's FIN.
        sock.resume();
      });
      silent = srv;
      await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
      const addr = srv.address();
      silentPort = typeof addr === 'object' && addr ? addr.port : 0;
    });
    afterAll(async () => {
      await new Promise((resolve) => silent?.close(resolve));
    });

    it('gives up on the handshake after connect_timeout', async () => {
      const err = await rejection(
        connectChain([host('mute', { port: silentPort, connect_timeout: 0.3 })], { agent: undefined }),
      );
      expect(err.message).toBe(
        `mute (root@127.0.0.1:${silentPort}) did not complete the SSH handshake within 300 ms`,
      );
      for (let i = 0; i < 40 && open > 0; i++) await sleep(25);
      expect(open).toBe(0);
    });

    it('aborts a pending handshake promptly and closes its socket', async () => {
      const ac = new AbortController();
      const p = connectChain([host('mute', { port: silentPort })], { ...noAgent, signal: ac.signal });
      await sleep(200);
      expect(open).toBe(1);
      const started = Date.now();
      ac.abort(new Error('user pressed ^C'));
      await expect(p).rejects.toThrow('user pressed ^C');
      expect(Date.now() - started).toBeLessThan(500);
      for (let i = 0; i < 40 && open > 0; i++) await sleep(25);
      expect(open).toBe(0);
    });
  });

  it('execUntil resolves on a marker while the command still runs', async () => {
    const chain = await connectChain([host('solo')], noAgent);
    try {
      const started = Date.now();
      const r = await chain.execUntil('solo', 'echo READY; sleep 5; echo LATE', {
        until: (out) => out.includes('READY\n'),
        timeoutMs: 10_000,
      });
      expect(Date.now() - started).toBeLessThan(3000);
      expect(r).toEqual({ stdout: 'READY\n', stderr: '', code: null });

      // ...and on the channel closing when the marker never comes.
      const ended = await chain.execUntil('solo', 'echo nothing', { until: () => false, timeoutMs: 10_000 });
      expect(ended).toEqual({ stdout: 'nothing\n', stderr: '', code: 0 });

      const late = await rejection(
        chain.execUntil('solo', 'sleep 5', { until: () => false, timeoutMs: 300, stdin: 'not in messages' }),
      );
      expect(late.message).toContain('`sleep 5` on solo did not report ready');
      expect(late.message).not.toContain('not in messages');
    } finally {
      await chain.close();
    }
  });

  it('leaves a detached process running after close(), which is idempotent', async () => {
    const chain = await connectChain([host('bastion'), host('target')], noAgent);
    // `exec` so that $! is the sleep itself (dash forks for `sh -c 'sleep 30'`, and killing
    // only the shell would leave the sleep behind).
    const r = await chain.exec('target', "nohup sh -c 'exec sleep 30' >/dev/null 2>&1 & echo $!");
    const pid = Number(r.stdout.trim());
    expect(pid).toBeGreaterThan(1);
    try {
      const first = chain.close();
      expect(chain.close()).toBe(first);
      await first;
      await chain.close();
      await expect(chain.exec('target', 'true')).rejects.toThrow(/connection is closed/);
      expect(isAlive(pid)).toBe(true);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
    for (let i = 0; i < 40 && isAlive(pid); i++) await sleep(50);
    expect(isAlive(pid)).toBe(false);
  });

  it('reports a connection that drops', async () => {
    const chain = await connectChain([host('solo', { server_alive_interval: 1 })], noAgent);
    const dropped: string[] = [];
    chain.onClose((h) => dropped.push(h));
    try {
      // $PPID of the remote shell is sshd's process for this session.
      const session = Number((await chain.exec('solo', 'echo $PPID')).stdout.trim());
      expect(session).toBeGreaterThan(1);
      process.kill(session, 'SIGKILL');
      for (let i = 0; i < 100 && dropped.length === 0; i++) await sleep(50);
      expect(dropped).toEqual(['solo']);
    } finally {
      await chain.close();
    }
  });

  it('aborts between hops and closes what was opened', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const p = connectChain([host('bastion'), host('target')], {
      ...noAgent,
      signal: ac.signal,
      onHop: (h) => {
        if (h === 'target') ac.abort(new Error('stop now'));
      },
    });
    await expect(p).rejects.toThrow('stop now');
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

/** Another ed25519 public key blob, for a "changed" known_hosts entry. */
const KEY_OTHER = 'AAAAC3NzaC1lZDI1NTE5AAAAIPd5FlFq9Vd4q5nZ1v7v0X2C0b6o6+5cJY9q7Tq3K3Xk';

/** The shape of an OpenSSH private key file holding an sk-ssh-ed25519 key (its key fields are dummies). */
function skPrivateKeyText(): string {
  const str = (b: Buffer | string): Buffer => {
    const data = Buffer.isBuffer(b) ? b : Buffer.from(b, 'latin1');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    return Buffer.concat([len, data]);
  };
  const pub = Buffer.concat([str('sk-ssh-ed25519@openssh.com'), str(Buffer.alloc(32)), str('ssh:')]);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    str('none'),
    str('none'),
    str(''),
    count,
    str(pub),
    str(Buffer.alloc(8)),
  ]);
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${blob.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

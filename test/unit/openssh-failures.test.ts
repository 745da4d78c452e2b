// What OpenSSH 9.2 logged (`ssh -E FILE`; lines end in \r\n there too), and
// the errors moshctl makes of it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import type { EnvError } from '../../src/errors.js';
import {
  droppedError,
  isEncryptedKey,
  lastLines,
  masterFailure,
  parseReachedAddress,
} from '../../src/openssh/failures.js';
import { sshHost } from '../support/ssh-host.js';

function host(over: Partial<SshHost> = {}): SshHost {
  return sshHost({
    identity_files: ['/root/.ssh/id_ed25519'],
    known_hosts: ['/root/.ssh/known_hosts'],
    ssh_client: 'openssh',
    ...over,
  });
}

const bastion = host();
const target = host({ name: 'target', ssh_name: 'target', address: '203.0.113.10' });
const crlf = (lines: string[]): string => lines.map((l) => `${l}\r\n`).join('');

function fail(stderr: string[], opts: { inner?: boolean; prevLog?: string[] } = {}): EnvError {
  return masterFailure({
    host: opts.inner ? target : bastion,
    prev: opts.inner ? bastion : undefined,
    log: crlf(stderr),
    prevLog: crlf(opts.prevLog ?? []),
  });
}

// What an inner hop's master prints when the previous hop refused its stdio forward.
const FORWARD_REFUSED = [
  'Stdio forwarding request failed: Session open refused by peer',
  'kex_exchange_identification: Connection closed by remote host',
  'Connection closed by UNKNOWN port 65535',
];

describe('masterFailure', () => {
  it('explains an unknown host key under strict checking, naming the hop and how to record the key', () => {
    const e = fail(
      [
        'No ED25519 host key is known for 203.0.113.10 and you have requested strict checking.',
        'Host key verification failed.',
      ],
      { inner: true },
    );
    expect(e.message).toBe('host key of target (root@203.0.113.10:22) is not in /root/.ssh/known_hosts');
    expect(e.hint).toContain('`ssh-keyscan -p 22 203.0.113.10` run on bastion to /root/.ssh/known_hosts');
    expect(e.hint).toContain('host_key_policy: accept-new for target');
    expect(e.where).toEqual({ host: 'target', step: 'connect', fault: 'host-key' });
  });

  it('explains a changed host key with the file, line, fingerprint and ssh-keygen -R', () => {
    const e = fail([
      '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
      '@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @',
      '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
      'IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!',
      'Someone could be eavesdropping on you right now (man-in-the-middle attack)!',
      'It is also possible that a host key has just been changed.',
      'The fingerprint for the ED25519 key sent by the remote host is',
      'SHA256:JuTk/zM9nSFfhGOv/pyKuh1S+tliXUYiTTNRC4lSWao.',
      'Please contact your system administrator.',
      'Add correct host key in /root/.ssh/known_hosts to get rid of this message.',
      'Offending ED25519 key in /root/.ssh/known_hosts:4',
      '  remove with:',
      '  ssh-keygen -f "/root/.ssh/known_hosts" -R "192.0.2.1"',
      'Host key for 192.0.2.1 has changed and you have requested strict checking.',
      'Host key verification failed.',
    ]);
    expect(e.message).toBe(
      'host key of bastion (root@192.0.2.1:22) does not match /root/.ssh/known_hosts line 4 (it presented SHA256:JuTk/zM9nSFfhGOv/pyKuh1S+tliXUYiTTNRC4lSWao): someone could be intercepting the connection (man-in-the-middle attack), or the host key was changed',
    );
    expect(e.hint).toContain("ssh-keygen -R '192.0.2.1' -f /root/.ssh/known_hosts");
  });

  it('explains a revoked host key', () => {
    const e = fail([
      '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
      '@       WARNING: REVOKED HOST KEY DETECTED!               @',
      '@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@',
      'The ED25519 host key for 192.0.2.1 is marked as revoked.',
      'This could mean that a stolen key is being used to',
      'impersonate this host.',
      'ED25519 host key for 192.0.2.1 was revoked and you have requested strict checking.',
      'Host key verification failed.',
    ]);
    expect(e.message).toContain('is marked @revoked');
    expect(e.hint).toMatch(/^do not connect/);
  });

  it('names the user, the keys tried and the methods the server accepts when login is refused', () => {
    const e = fail([
      'Load key "/root/.ssh/id_ed25519": bad permissions',
      'root@192.0.2.1: Permission denied (publickey,password).',
    ]);
    expect(e.message).toBe(
      'bastion (root@192.0.2.1:22) refused to log in user root; tried /root/.ssh/id_ed25519 (it accepts: publickey,password); Load key "/root/.ssh/id_ed25519": bad permissions',
    );
    expect(e.hint).toContain('/root/.ssh/id_ed25519.pub to ~root/.ssh/authorized_keys');
    const many = fail(['Received disconnect from 192.0.2.1 port 22:2: Too many authentication failures']);
    expect(many.message).toContain('too many authentication failures');
    expect(many.hint).toContain('IdentitiesOnly yes');
  });

  it('tells refused, unreachable, unresolvable and silent first hops apart', () => {
    expect(fail(['ssh: connect to host 192.0.2.1 port 22: Connection refused']).message).toBe(
      'cannot reach bastion (root@192.0.2.1:22): connection refused',
    );
    expect(fail(['ssh: connect to host 192.0.2.1 port 22: No route to host']).message).toBe(
      'cannot reach bastion (root@192.0.2.1:22): no route to host',
    );
    expect(fail(['ssh: connect to host 10.9.8.7 port 22: Network is unreachable']).message).toBe(
      'cannot reach bastion (root@192.0.2.1:22): network unreachable',
    );
    const dns = fail(['ssh: Could not resolve hostname nosuch.invalid: Name or service not known']);
    expect(dns.message).toBe('cannot reach bastion (root@192.0.2.1:22): 192.0.2.1 does not resolve');
    const slow = fail(['ssh: connect to host 192.0.2.1 port 22: Connection timed out']);
    expect(slow.message).toBe('bastion (root@192.0.2.1:22) did not answer within 10 s');
    expect(slow.hint).toContain('this machine can reach it');
    expect(
      fail(['Connection timed out during banner exchange', 'Connection to 192.0.2.1 port 22 timed out'])
        .message,
    ).toBe('bastion (root@192.0.2.1:22) did not answer within 10 s');
  });

  it('blames the previous hop when it may not forward (administratively prohibited)', () => {
    const e = fail(FORWARD_REFUSED, {
      inner: true,
      prevLog: ['channel 2: open failed: administratively prohibited: open failed'],
    });
    expect(e.message).toBe(
      'bastion refused to forward a connection to target (203.0.113.10:22): administratively prohibited',
    );
    expect(e.hint).toContain('allow TCP forwarding for root on bastion');
    expect(e.where.host).toBe('target');
  });

  it('reports what the previous hop saw when its connection to the next one failed', () => {
    const refused = fail(FORWARD_REFUSED, {
      inner: true,
      prevLog: ['channel 2: open failed: connect failed: Connection refused'],
    });
    expect(refused.message).toBe(
      'cannot reach target (root@203.0.113.10:22) through bastion: connection refused',
    );
    expect(refused.hint).toContain('on bastion: nc -vz 203.0.113.10 22');
    const dns = fail(FORWARD_REFUSED, {
      inner: true,
      prevLog: ['channel 2: open failed: connect failed: Name or service not known'],
    });
    expect(dns.message).toBe(
      'cannot reach target (root@203.0.113.10:22) through bastion: 203.0.113.10 does not resolve on bastion',
    );
    const bare = fail(FORWARD_REFUSED, { inner: true });
    expect(bare.message).toBe(
      'bastion did not open a connection to target (root@203.0.113.10:22): the forwarding request was refused',
    );
    const slow = fail(
      ['Connection timed out during banner exchange', 'Connection to UNKNOWN port 65535 timed out'],
      { inner: true },
    );
    expect(slow.message).toBe('target (root@203.0.113.10:22) did not answer through bastion within 10 s');
    expect(slow.hint).toContain('bastion can reach 203.0.113.10:22');
  });

  it('falls back to the last lines ssh printed', () => {
    const e = fail([
      'Authenticated to 192.0.2.1 ([192.0.2.1]:22) using "publickey".',
      '/root/ssh_config: line 3: Bad configuration option: frobnicate',
      '/root/ssh_config: terminating, 1 bad configuration options',
    ]);
    expect(e.message).toBe(
      'ssh to bastion (root@192.0.2.1:22) failed: /root/ssh_config: line 3: Bad configuration option: frobnicate; /root/ssh_config: terminating, 1 bad configuration options',
    );
    expect(e.hint).toContain('ssh -v bastion');
    expect(fail([]).message).toBe('ssh to bastion (root@192.0.2.1:22) failed without saying why');
  });
});

describe('masterFailure for a first hop behind a ProxyCommand (an access broker)', () => {
  const broker = host({
    name: 'devbox',
    ssh_name: 'devbox',
    address: 'i-0abc123.broker.internal',
    proxy_command: 'aws ssm start-session --target %h',
  });
  const brokerFail = (log: string[], stderr: string): EnvError =>
    masterFailure({ host: broker, prev: undefined, log: crlf(log), prevLog: '', stderr });

  it("quotes the command's own stderr when it exits, and names the command to run by hand", () => {
    const e = brokerFail(
      [
        'kex_exchange_identification: Connection closed by remote host',
        'Connection closed by UNKNOWN port 65535',
      ],
      'An error occurred (TargetNotConnected) when calling the StartSession operation: i-0abc123 is not connected.\n',
    );
    expect(e.message).toBe(
      'the ProxyCommand of devbox (root@i-0abc123.broker.internal:22) ended before an ssh connection was made: An error occurred (TargetNotConnected) when calling the StartSession operation: i-0abc123 is not connected.',
    );
    expect(e.hint).toContain(
      '"aws ssm start-session --target %h" (ssh_config\'s ProxyCommand for devbox): run it by hand',
    );
    expect(e.where).toEqual({ host: 'devbox', step: 'connect', fault: 'reach' });
    expect(brokerFail([], '').message).toMatch(
      /ended before an ssh connection was made, without a word on stderr$/,
    );
  });

  it('says a hanging command gave nothing within connect_timeout, with what it printed', () => {
    const e = brokerFail(
      ['Connection timed out during banner exchange', 'Connection to UNKNOWN port 65535 timed out'],
      'Open https://sso.example.test/device?code=WXYZ to log in\n',
    );
    expect(e.message).toBe(
      'the ProxyCommand of devbox (root@i-0abc123.broker.internal:22) gave no ssh connection within 10 s; it said: Open https://sso.example.test/device?code=WXYZ to log in',
    );
  });

  it('still reports a refused login or host key as such: the broker did its part', () => {
    expect(
      brokerFail(['root@i-0abc123.broker.internal: Permission denied (publickey).'], '').message,
    ).toMatch(/^devbox \(root@i-0abc123\.broker\.internal:22\) refused to log in user root;/);
  });
});

describe('parseReachedAddress', () => {
  it('reads the IPv4 or IPv6 address from the VERBOSE line, old and new forms', () => {
    expect(
      parseReachedAddress(crlf(['Authenticated to bastion.example.com ([192.0.2.1]:22) using "publickey".'])),
    ).toBe('192.0.2.1');
    expect(parseReachedAddress(crlf(['Authenticated to ::1 ([::1]:2222) using "publickey".']))).toBe('::1');
    expect(
      parseReachedAddress(crlf(['Warning: Permanently added x', 'Authenticated to b ([2001:db8::1]:22).'])),
    ).toBe('2001:db8::1');
  });

  it('is undefined without the line, or through a ProxyCommand', () => {
    expect(parseReachedAddress('')).toBeUndefined();
    expect(
      parseReachedAddress(crlf(['Authenticated to b ([UNKNOWN]:65535) using "publickey".'])),
    ).toBeUndefined();
    expect(
      parseReachedAddress(crlf(['Authenticated to 192.0.2.1 (via proxy) using "publickey".'])),
    ).toBeUndefined();
  });
});

describe('lastLines and droppedError', () => {
  it('keep what ssh said about a dropped connection, without decoration', () => {
    const text = crlf([
      'Authenticated to 192.0.2.1 ([192.0.2.1]:22) using "publickey".',
      'Timeout, server 192.0.2.1 not responding.',
      'Transferred: sent 3784, received 3708 bytes, in 40.8 seconds',
    ]);
    expect(lastLines(text)).toBe('Timeout, server 192.0.2.1 not responding.');
    const e = droppedError(bastion, text);
    expect(e.message).toBe(
      'the connection to bastion (root@192.0.2.1:22) closed: Timeout, server 192.0.2.1 not responding.',
    );
  });
});

describe('a refused login without a terminal', () => {
  const denied = crlf(['root@192.0.2.1: Permission denied (publickey).']);
  const withAgentDefault = host({ identity_agent: undefined });

  it('says an encrypted key could not be unlocked when there is neither a terminal nor an agent', () => {
    const e = masterFailure({
      host: withAgentDefault,
      prev: undefined,
      log: denied,
      prevLog: '',
      agent: false,
      interactive: false,
      encryptedKeys: ['/root/.ssh/id_ed25519'],
    });
    expect(e.message).toBe(
      'identity file /root/.ssh/id_ed25519 for bastion is encrypted, and there is neither a terminal to ask for its passphrase nor an ssh-agent',
    );
    expect(e.hint).toBe(
      'load it into ssh-agent (eval "$(ssh-agent)" && ssh-add /root/.ssh/id_ed25519), or run moshctl in a terminal',
    );
  });

  it('does not claim to have tried the ssh-agent when no agent socket exists', () => {
    const e = masterFailure({
      host: withAgentDefault,
      prev: undefined,
      log: denied,
      prevLog: '',
      agent: false,
    });
    expect(e.message).toBe(
      'bastion (root@192.0.2.1:22) refused to log in user root; tried /root/.ssh/id_ed25519 (it accepts: publickey)',
    );
    const withAgent = masterFailure({
      host: withAgentDefault,
      prev: undefined,
      log: denied,
      prevLog: '',
      agent: true,
    });
    expect(withAgent.message).toContain('tried /root/.ssh/id_ed25519 and the ssh-agent');
  });

  it('tells an encrypted key file from one without a passphrase (OpenSSH and PEM formats)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-keys-'));
    try {
      const key = (name: string, args: string[]): Buffer => {
        execFileSync('ssh-keygen', ['-q', '-f', join(dir, name), ...args]);
        return readFileSync(join(dir, name));
      };
      expect(isEncryptedKey(key('plain', ['-t', 'ed25519', '-N', '']))).toBe(false);
      expect(isEncryptedKey(key('locked', ['-t', 'ed25519', '-N', 'secret 1']))).toBe(true);
      expect(isEncryptedKey(key('pem', ['-t', 'ecdsa', '-m', 'PEM', '-N', 'secret 1']))).toBe(true);
      expect(isEncryptedKey(key('pem-plain', ['-t', 'ecdsa', '-m', 'PEM', '-N', '']))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

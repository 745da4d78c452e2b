// The pure parts of forwarding over the ssh chain: the -R spec and -W target
// OpenSSH is given, what its master logs when a channel is refused, and the
// messages both clients share.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { EnvError, UserError } from '../../src/errors.js';
import {
  claimOpenFailure,
  openFailuresIn,
  remoteForwardFailure,
} from '../../src/openssh/forward-failures.js';
import {
  listenRefused,
  noAgentToForward,
  openFailureOfCode,
  openRefused,
  openTimeout,
} from '../../src/transport/forward-errors.js';
import { agentToForward } from '../../src/transport/agent.js';
import { remoteForwardSpec, stdioForwardTarget } from '../../src/transport/forward-spec.js';
import { sshHost } from '../support/ssh-host.js';
import { pipeDuplex } from '../../src/transport/pipe-duplex.js';

describe('remoteForwardSpec', () => {
  it('writes each shape ssh -R takes, the bind address always given', () => {
    expect(remoteForwardSpec({ host: 'localhost', port: 8080 }, { host: 'localhost', port: 80 })).toBe(
      'localhost:8080:localhost:80',
    );
    expect(remoteForwardSpec({ host: 'localhost', port: 0 }, { path: '/run/app.sock' })).toBe(
      'localhost:0:/run/app.sock',
    );
    expect(remoteForwardSpec({ path: '/tmp/remote.sock' }, { host: '127.0.0.1', port: 5432 })).toBe(
      '/tmp/remote.sock:127.0.0.1:5432',
    );
    expect(remoteForwardSpec({ path: '/tmp/r.sock' }, { path: '/tmp/l.sock' })).toBe(
      '/tmp/r.sock:/tmp/l.sock',
    );
    expect(remoteForwardSpec({ host: '*', port: 9000 }, { host: 'db.internal', port: 5432 })).toBe(
      '*:9000:db.internal:5432',
    );
  });

  it('puts IPv6 addresses in brackets, on either side', () => {
    expect(remoteForwardSpec({ host: '::1', port: 8080 }, { host: '2001:db8::10', port: 80 })).toBe(
      '[::1]:8080:[2001:db8::10]:80',
    );
  });

  it('escapes what ssh would split a path at, and makes a bare name a path', () => {
    expect(remoteForwardSpec({ path: '/tmp/a:b.sock' }, { path: '/tmp/c\\d.sock' })).toBe(
      '/tmp/a\\:b.sock:/tmp/c\\\\d.sock',
    );
    expect(remoteForwardSpec({ path: '[x]' }, { host: 'localhost', port: 1 })).toBe('./\\[x\\]:localhost:1');
    expect(remoteForwardSpec({ path: 'app.sock' }, { path: '/x/y' })).toBe('./app.sock:/x/y');
  });

  it('refuses hosts, ports and paths ssh would misread, as a user error', () => {
    const bad: [Parameters<typeof remoteForwardSpec>[0], Parameters<typeof remoteForwardSpec>[1]][] = [
      [
        { host: 'a:b', port: 1 },
        { host: 'x', port: 1 },
      ],
      [
        { host: 'localhost', port: 1 },
        { host: '-oProxyCommand=x', port: 1 },
      ],
      [
        { host: 'localhost', port: 1 },
        { host: 'a b', port: 1 },
      ],
      [
        { host: 'localhost', port: 1 },
        { host: '', port: 1 },
      ],
      [
        { host: 'localhost', port: 65536 },
        { host: 'x', port: 1 },
      ],
      [
        { host: 'localhost', port: 1 },
        { host: 'x', port: 0 },
      ],
      [
        { host: 'localhost', port: 1.5 },
        { host: 'x', port: 1 },
      ],
      [{ path: '' }, { host: 'x', port: 1 }],
      [{ path: '/tmp/a\nb' }, { host: 'x', port: 1 }],
    ];
    for (const [at, to] of bad)
      expect(() => remoteForwardSpec(at, to), JSON.stringify([at, to])).toThrow(UserError);
  });
});

describe('stdioForwardTarget', () => {
  it('is HOST:PORT, brackets for IPv6', () => {
    expect(stdioForwardTarget({ host: 'localhost', port: 80 })).toBe('localhost:80');
    expect(stdioForwardTarget({ host: '203.0.113.10', port: 22 })).toBe('203.0.113.10:22');
    expect(stdioForwardTarget({ host: '2001:db8::10', port: 5432 })).toBe('[2001:db8::10]:5432');
    expect(() => stdioForwardTarget({ host: '[::1]', port: 80 })).toThrow(UserError);
  });
});

// Lines as OpenSSH 9.2's master logs them (LogLevel VERBOSE), seen in the lab.
const LOG = [
  'Authenticated to 192.0.2.1 ([192.0.2.1]:22) using "publickey".',
  'channel 2: open failed: connect failed: Connection refused',
  'channel 3: open failed: administratively prohibited: open failed',
  'channel 2: open failed: connect failed: Temporary failure in name resolution',
  'channel 4: open failed: unknown channel type: unsupported channel type',
  '',
].join('\n');

describe('openFailuresIn', () => {
  it('reads each refused channel of a master log, with where its line starts', () => {
    const start = 1000;
    const found = openFailuresIn(LOG, start);
    expect(found.map(({ kind, detail }) => ({ kind, detail }))).toEqual([
      { kind: 'connect-failed', detail: 'Connection refused' },
      { kind: 'prohibited', detail: '' },
      { kind: 'connect-failed', detail: 'Temporary failure in name resolution' },
      { kind: 'other', detail: 'unknown channel type: unsupported channel type' },
    ]);
    const firstLine = LOG.indexOf('channel 2');
    expect(found[0]?.offset).toBe(start + firstLine);
    expect(found[1]?.offset).toBe(start + LOG.indexOf('channel 3'));
  });

  it('gives each failed open its own line, in order, and none once all are taken', () => {
    const claimed = new Set<number>();
    expect(claimOpenFailure(LOG, 0, claimed)?.detail).toBe('Connection refused');
    expect(claimOpenFailure(LOG, 0, claimed)?.kind).toBe('prohibited');
    expect(claimOpenFailure(LOG, 0, claimed)?.detail).toMatch(/name resolution/);
    expect(claimOpenFailure(LOG, 0, claimed)?.kind).toBe('other');
    expect(claimOpenFailure(LOG, 0, claimed)).toBeUndefined();
    expect(claimOpenFailure('debug1: nothing here\n', 0, new Set())).toBeUndefined();
  });
});

describe('remoteForwardFailure', () => {
  it('quotes the reason the master gave, without the mux client’s own trailer', () => {
    const stderr =
      'mux_client_forward: forwarding request failed: remote port forwarding failed for listen port 7777\nmuxclient: master forward request failed\n';
    expect(remoteForwardFailure(stderr)).toBe('remote port forwarding failed for listen port 7777');
    expect(remoteForwardFailure('Control socket connect(/x/1): No such file or directory\n')).toBe(
      'Control socket connect(/x/1): No such file or directory',
    );
    expect(remoteForwardFailure('')).toBeUndefined();
  });
});

describe('forward errors', () => {
  it('names the host, the destination and the sshd settings for an administrative refusal', () => {
    const err = openRefused('target', { host: 'localhost', port: 5432 }, openFailureOfCode(1, 'open failed'));
    expect(err).toBeInstanceOf(EnvError);
    expect(err.where).toEqual({ host: 'target', step: 'forward' });
    expect(err.message).toBe(
      'target refused to open a connection to localhost:5432: administratively prohibited (AllowTcpForwarding or PermitOpen in the sshd_config of target, or a restriction on the key)',
    );
    expect(err.hint).toMatch(
      /AllowTcpForwarding yes \(or local\) and a PermitOpen that includes localhost:5432/,
    );
    const path = openRefused('target', { path: '/run/pg.sock' }, { kind: 'prohibited', detail: '' });
    expect(path.message).toMatch(/AllowStreamLocalForwarding/);
    // sshd's only words for a socket path it would not, or could not, open (no errno, reason "connect failed").
    const unsaid = openRefused('target', { path: '/run/pg.sock' }, openFailureOfCode(2, 'open failed'));
    expect(unsaid.message).toBe(
      'target could not open /run/pg.sock: "open failed", all sshd says when the socket does not exist there or PermitOpen in its sshd_config (which limits socket paths too) leaves it out',
    );
    expect(unsaid.hint).toMatch(/^check that a server listens on \/run\/pg\.sock on target/);
  });

  it('quotes why a connect failed, and says a name did not resolve where it was looked up', () => {
    const refused = openRefused(
      'target',
      { host: '::1', port: 80 },
      openFailureOfCode(2, 'Connection refused'),
    );
    expect(refused.message).toBe('target could not connect to [::1]:80: connection refused');
    expect(refused.hint).toMatch(/on target: nc -vz ::1 80/);
    const name = openRefused(
      'target',
      { host: 'db.internal', port: 5432 },
      { kind: 'connect-failed', detail: 'Temporary failure in name resolution' },
    );
    expect(name.message).toBe(
      'target could not connect to db.internal:5432: db.internal does not resolve there',
    );
    expect(name.hint).toMatch(/resolved on target, not here/);
  });

  it('says how long a silent open was waited for, and why a listen was refused', () => {
    expect(openTimeout('target', { host: 'localhost', port: 80 }, 5000).message).toBe(
      'target did not open a connection to localhost:80 within 5 s',
    );
    const listen = listenRefused(
      'target',
      '127.0.0.1:7001:localhost:80',
      { host: '127.0.0.1', port: 7001 },
      'remote port forwarding failed for listen port 7001',
    );
    expect(listen.message).toBe(
      'target refused to listen for -R 127.0.0.1:7001:localhost:80: remote port forwarding failed for listen port 7001',
    );
    expect(listen.hint).toMatch(/port 7001 may be in use on target.*GatewayPorts/);
    expect(noAgentToForward('target', 'SSH_AUTH_SOCK is not set').message).toBe(
      'cannot forward the ssh-agent to target: SSH_AUTH_SOCK is not set',
    );
  });
});

describe('pipeDuplex', () => {
  it('reads one stream, writes the other, ends each side on its own, and destroys both', async () => {
    const out = new PassThrough();
    const into = new PassThrough();
    let destroyed = 0;
    const d = pipeDuplex(out, into, () => destroyed++);
    const written: Buffer[] = [];
    into.on('data', (c: Buffer) => written.push(c));
    d.write('ping');
    d.end();
    await new Promise((r) => into.once('end', r));
    expect(Buffer.concat(written).toString()).toBe('ping');
    // Our side ended; theirs still reads.
    const read = new Promise<string>((resolve) => {
      let text = '';
      d.on('data', (c: Buffer) => (text += c.toString()));
      d.once('end', () => resolve(text));
    });
    out.end('pong');
    expect(await read).toBe('pong');
    d.destroy();
    expect(destroyed).toBe(1);
    expect(out.destroyed && into.destroyed).toBe(true);
  });
});

describe('agentToForward', () => {
  it('takes the host’s IdentityAgent, else the given agent, else SSH_AUTH_SOCK, and says why there is none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agent-'));
    const sock = join(dir, 'agent.sock');
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, '');
    const server = createServer();
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const host = (identity_agent: string | undefined) => sshHost({ name: 'target', identity_agent });
      expect(agentToForward(host(sock), { agent: file })).toEqual({ socket: sock });
      expect(agentToForward(host(undefined), { agent: sock })).toEqual({ socket: sock });
      expect(agentToForward(host(undefined), {}, { SSH_AUTH_SOCK: sock })).toEqual({ socket: sock });
      // An explicit `agent: undefined` means none, as ConnectOptions.agent says.
      expect(agentToForward(host(undefined), { agent: undefined }, { SSH_AUTH_SOCK: sock })).toEqual({
        missing: 'no agent was given and SSH_AUTH_SOCK is not set',
      });
      expect(agentToForward(host('none'), { agent: sock })).toEqual({
        missing: 'IdentityAgent is none for target',
      });
      expect(agentToForward(host(file), {})).toEqual({ missing: `no agent socket at ${file}` });
    } finally {
      await new Promise((r) => server.close(r));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

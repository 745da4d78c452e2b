// The pure parts of the lab's forwarding helpers (src/lab/services.ts and
// agent-exposure.ts): reading /proc/net/unix and /proc/PID/environ, telling an
// agent socket from others, the HTTP servers' argv and ssh-keygen's listing.
// e2e/forwards.test.ts proves them against real sshd, ssh -A and curl.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import {
  agentSocketPid,
  authSockOf,
  isAgentSocketPath,
  unixSocketPaths,
} from '../../src/lab/agent-exposure.js';
import { run } from '../../src/lab/proc.js';
import { fingerprintOf, freeTcpPorts, httpServerArgv } from '../../src/lab/services.js';

const PROC_NET_UNIX = [
  'Num       RefCount Protocol Flags    Type St Inode Path',
  '00000000cc6fd0da: 00000003 00000000 00000000 0001 03  1187',
  '000000006f4b3f1c: 00000002 00000000 00010000 0001 01 88231 /tmp/ssh-4jOSwWZTgK/agent.22112',
  '0000000011aa22bb: 00000002 00000000 00010000 0001 01 88232 @/tmp/.X11-unix/X0',
  '0000000033cc44dd: 00000002 00000000 00010000 0001 01 88233 /run/a dir/with space.sock',
  '0000000055ee66ff: 00000003 00000000 00000000 0001 03 88234 /tmp/ssh-4jOSwWZTgK/agent.22112',
  '',
].join('\n');

describe('unixSocketPaths', () => {
  it('lists bound paths once each, without the header, unnamed or abstract sockets', () => {
    expect(unixSocketPaths(PROC_NET_UNIX)).toEqual([
      '/tmp/ssh-4jOSwWZTgK/agent.22112',
      '/run/a dir/with space.sock',
    ]);
  });

  it('is empty for a namespace without named sockets', () => {
    expect(unixSocketPaths(PROC_NET_UNIX.split('\n').slice(0, 2).join('\n'))).toEqual([]);
  });
});

describe('isAgentSocketPath and agentSocketPid', () => {
  it.each([
    ['/tmp/ssh-4jOSwWZTgK/agent.22112', true, 22112],
    ['/tmp/moshctl-lab-x/agent-15d396.sock', true, undefined],
    ['/root/.ssh/agent', true, undefined],
    ['/run/user/0/gnupg/S.gpg-agent', false, undefined],
    ['/tmp/tmux-0/default', false, undefined],
    ['/tmp/ssh-abc/agent.12/x', false, undefined],
  ])('%s: agent %s, sshd pid %s', (path, agent, pid) => {
    expect(isAgentSocketPath(path)).toBe(agent);
    expect(agentSocketPid(path)).toBe(pid);
  });
});

describe('authSockOf', () => {
  it('finds SSH_AUTH_SOCK in a NUL-separated environment block', () => {
    const block = Buffer.from('HOME=/root\0SSH_AUTH_SOCK=/tmp/ssh-x/agent.1\0LANG=C.UTF-8\0');
    expect(authSockOf(block)).toBe('/tmp/ssh-x/agent.1');
  });

  it('is undefined without it, and does not take a longer name that starts the same', () => {
    expect(authSockOf('HOME=/root\0MY_SSH_AUTH_SOCK=/x\0')).toBeUndefined();
    expect(authSockOf('')).toBeUndefined();
  });
});

describe('httpServerArgv', () => {
  it('runs python3 http.server on the address and port, serving the folder', () => {
    expect(httpServerArgv('python3', '127.0.0.1', 8080, '/lab/http', 'hello.txt')).toEqual([
      'python3',
      '-m',
      'http.server',
      '--bind',
      '127.0.0.1',
      '--directory',
      '/lab/http',
      '8080',
    ]);
  });

  it('runs the perl server with address, port and the file as arguments, never in its program text', () => {
    const argv = httpServerArgv('perl', '::1', 8080, '/lab/http', 'hello.txt');
    expect(argv.slice(0, 2)).toEqual(['perl', '-e']);
    expect(argv.slice(3)).toEqual(['::1', '8080', '/lab/http/hello.txt']);
    expect(argv[2]).not.toContain('8080');
  });

  it.each([0, 65536, 1.5])('refuses port %s', (port) => {
    expect(() => httpServerArgv('python3', '127.0.0.1', port, '/d', 'f')).toThrow(/bad port/);
  });

  it('refuses an address that is not an IP literal', () => {
    expect(() => httpServerArgv('python3', 'localhost; rm -rf /', 80, '/d', 'f')).toThrow(
      /bad listen address/,
    );
  });
});

describe('fingerprintOf', () => {
  it('takes the SHA256 fingerprint from ssh-keygen -l', () => {
    expect(
      fingerprintOf(
        '256 SHA256:k+uQVrS7fpNYjghmq7nXFBSgSX8upmrdTsBq8wbimp8 moshctl-lab-agent-9ee0ad (ED25519)\n',
      ),
    ).toBe('SHA256:k+uQVrS7fpNYjghmq7nXFBSgSX8upmrdTsBq8wbimp8');
  });

  it('throws on anything else', () => {
    expect(() => fingerprintOf('The agent has no identities.')).toThrow(/no fingerprint/);
  });
});

describe('freeTcpPorts', () => {
  // Run here instead of in a lab namespace: the picking is the same.
  const here = { exec: (_host: string, argv: readonly string[]) => run(argv) };

  it('gives different ports below the ephemeral range', async () => {
    const ports = await freeTcpPorts(here, 'client', 5);
    expect(ports).toHaveLength(5);
    expect(new Set(ports).size).toBe(5);
    for (const p of ports) expect(p >= 20000 && p < 30000).toBe(true);
  });
});

describe('the HTTP servers themselves (run here, not in a lab)', () => {
  const here = { exec: (_host: string, argv: readonly string[]) => run(argv) };

  it.each(['python3', 'perl'] as const)('%s serves the file to a GET', async (runtime) => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-http-'));
    writeFileSync(join(dir, 'hello.txt'), 'body 42\n');
    const [port = 0] = await freeTcpPorts(here, 'client', 1);
    const [cmd = '', ...args] = httpServerArgv(runtime, '127.0.0.1', port, dir, 'hello.txt');
    const server = spawn(cmd, args, { stdio: 'ignore' });
    try {
      let body = '';
      for (let i = 0; i < 100 && body === ''; i++) {
        body = await fetch(`http://127.0.0.1:${port}/hello.txt`)
          .then((r) => (r.ok ? r.text() : ''))
          .catch(() => '');
        if (body === '') await sleep(50);
      }
      expect(body).toBe('body 42\n');
    } finally {
      server.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

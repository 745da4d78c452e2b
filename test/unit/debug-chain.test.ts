// --debug's RemoteChain decorator: each remote command with its host, duration
// and how it ended; never what went to stdin, never a session key.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { debugChain, debugChainOption, maskSecrets } from '../../src/transport/debug-chain.js';
import type { CloseListener, ExecResult, LineChannel, RemoteChain } from '../../src/transport/types.js';

const KEY = 'AbCdEfGhIjKlMnOpQrStUv';

/** A chain whose commands answer from a table after a set time on a fake clock; records what it was given. */
function fakeChain(clock: { now: number }) {
  const given: { host: string; command: string; stdin?: string }[] = [];
  const listeners: CloseListener[] = [];
  let closeChannel = (): void => undefined;
  const answer = async (host: string, command: string, stdin?: string): Promise<ExecResult> => {
    given.push({ host, command, ...(stdin !== undefined ? { stdin } : {}) });
    await Promise.resolve();
    clock.now += 25;
    if (command.startsWith('fail'))
      throw new Error(`connection to ${host} lost; saw MOSH CONNECT 60001 ${KEY}`);
    if (command.includes('mosh-server'))
      return { stdout: `MOSH CONNECT 60001 ${KEY}\n`, stderr: '', code: null };
    if (command.startsWith('false')) return { stdout: '', stderr: 'no such file\nreally\n', code: 1 };
    return { stdout: 'secret stdout', stderr: '', code: 0 };
  };
  const chain: RemoteChain = {
    hostNames: ['bastion', 'box'],
    reachedAddress: '192.0.2.1',
    localAddress: '192.0.2.10',
    exec: (host, command, opts) => answer(host, command, opts?.stdin),
    execUntil: (host, command, opts) => answer(host, command, opts.stdin),
    openChannel: async (host, command, opts) => {
      await answer(host, command, opts.stdin);
      const closed = new Promise<void>((resolve) => (closeChannel = resolve));
      return { closed } as unknown as LineChannel;
    },
    openStream: () => Promise.reject(new Error('unused')),
    openConnection: async (host, to) => {
      await answer(host, `connect ${JSON.stringify(to)}`);
      if ('port' in to && to.port === 9)
        throw new Error(`${host} could not connect to ${to.host}:9: connection refused`);
      return new PassThrough();
    },
    remoteForward: async (host, at, to) => {
      await answer(host, `listen ${JSON.stringify(at)} ${JSON.stringify(to)}`);
      return { port: 'port' in at && at.port === 0 ? 40123 : undefined };
    },
    onClose: (cb) => {
      listeners.push(cb);
      return () => undefined;
    },
    destroy: () => undefined,
    close: () => Promise.resolve(),
  };
  return {
    chain,
    given,
    drop: (host: string) => listeners.forEach((l) => l(host, new Error('reset'))),
    closeChannel: () => closeChannel(),
  };
}

describe('debugChain', () => {
  it('logs each command with its host, duration and exit code; never stdin, stdout or a key', async () => {
    const clock = { now: 1000 };
    const fake = fakeChain(clock);
    const lines: string[] = [];
    const chain = debugChain(fake.chain, (l) => lines.push(l), { clock: () => clock.now });

    expect(chain.hostNames).toEqual(['bastion', 'box']);
    expect(chain.reachedAddress).toBe('192.0.2.1');
    // The runner drops a chain whose local address is gone without probing it: --debug must not hide it.
    expect(chain.localAddress).toBe('192.0.2.10');
    await chain.exec('bastion', 'kill -0 4242', { stdin: 'STDIN-SECRET' });
    await chain.exec('box', 'false\nsecond line');
    await chain.execUntil('box', `MOSH_KEY=${KEY} mosh-server new -p 60001`, {
      until: () => true,
      timeoutMs: 1000,
    });
    const channel = await chain.openChannel('bastion', 'python3 - 60000-60100', { stdin: 'RELAY-PROGRAM' });
    await expect(chain.exec('box', 'fail now')).rejects.toThrow('connection to box lost');
    clock.now += 100;
    fake.closeChannel();
    await channel.closed;
    await Promise.resolve();
    fake.drop('box');

    expect(lines).toMatchInlineSnapshot(`
      [
        "#1 bastion $ kill -0 4242",
        "#1 bastion exit 0 after 25 ms",
        "#2 box $ false\\nsecond line",
        "#2 box exit 1 after 25 ms; stderr: no such file\\nreally",
        "#3 box $ MOSH_KEY=<key> mosh-server new -p 60001",
        "#3 box ready after 25 ms (still running)",
        "#4 bastion (channel) $ python3 - 60000-60100",
        "#4 bastion channel open after 25 ms",
        "#5 box $ fail now",
        "#5 box failed after 25 ms: connection to box lost; saw MOSH CONNECT 60001 <key>",
        "#4 bastion channel closed after 125 ms open",
        "box: connection closed: reset",
      ]
    `);
    const all = lines.join('\n');
    for (const secret of ['STDIN-SECRET', 'RELAY-PROGRAM', 'secret stdout', KEY])
      expect(all).not.toContain(secret);
    // The inner chain still got everything, stdin included.
    expect(fake.given.map((g) => g.stdin)).toEqual([
      'STDIN-SECRET',
      undefined,
      undefined,
      'RELAY-PROGRAM',
      undefined,
    ]);
  });

  it('masks keys in every form they could take', () => {
    expect(
      maskSecrets(
        `MOSH CONNECT 60001 ${KEY}\nMOSH_KEY=${KEY} mosh-client; MOSH_KEY='${KEY}' x; MOSH_KEY="a b" y; MOSH CONNECT 1 short`,
      ),
    ).toBe(
      'MOSH CONNECT 60001 <key>\nMOSH_KEY=<key> mosh-client; MOSH_KEY=<key> x; MOSH_KEY=<key> y; MOSH CONNECT 1 short',
    );
  });
});

describe('debugChain forwards', () => {
  it('logs each forwarded connection, remote forward and agent channel by its endpoints', async () => {
    const clock = { now: 0 };
    const fake = fakeChain(clock);
    const lines: string[] = [];
    const chain = debugChain(fake.chain, (l) => lines.push(l), { clock: () => clock.now });
    (await chain.openConnection('box', { host: '2001:db8::10', port: 5432 }, { timeoutMs: 1000 })).destroy();
    await expect(
      chain.openConnection('box', { host: 'localhost', port: 9 }, { timeoutMs: 1000 }),
    ).rejects.toThrow(/connection refused/);
    await chain.remoteForward('box', { host: 'localhost', port: 0 }, { path: '/run/app.sock' });
    await chain.openChannel('box', 'ln -sf "$SSH_AUTH_SOCK" /tmp/a', { stdin: '', forwardAgent: true });
    expect(lines).toEqual([
      '#1 box forward $ connect [2001:db8::10]:5432',
      '#1 box opened after 25 ms',
      '#2 box forward $ connect localhost:9',
      '#2 box failed after 25 ms: box could not connect to localhost:9: connection refused',
      '#3 box forward $ listen localhost:0 for /run/app.sock here',
      '#3 box accepted after 25 ms (port 40123)',
      '#4 box (channel, with the agent) $ ln -sf "$SSH_AUTH_SOCK" /tmp/a',
      '#4 box channel open after 25 ms',
    ]);
  });
});

describe('debugChainOption', () => {
  it('wraps chains only under MOSHCTL_DEBUG (set by --debug), writing "moshctl: debug:" lines', async () => {
    expect(debugChainOption({})).toEqual({});
    expect(debugChainOption({ MOSHCTL_DEBUG: '0' })).toEqual({});
    expect(debugChainOption({ MOSHCTL_DEBUG: '' })).toEqual({});
    let out = '';
    const { wrapChain } = debugChainOption({ MOSHCTL_DEBUG: '1' }, (t) => (out += t));
    if (!wrapChain) throw new Error('expected a wrapper');
    const clock = { now: 0 };
    // Two chains of one runner (a reconnect) share the numbering.
    await wrapChain(fakeChain(clock).chain).exec('bastion', 'true');
    await wrapChain(fakeChain(clock).chain).exec('bastion', 'true');
    expect(out.replace(/after \d+ ms/g, 'after N ms')).toBe(
      [
        'moshctl: debug: #1 bastion $ true',
        'moshctl: debug: #1 bastion exit 0 after N ms',
        'moshctl: debug: #2 bastion $ true',
        'moshctl: debug: #2 bastion exit 0 after N ms',
        '',
      ].join('\n'),
    );
  });
});

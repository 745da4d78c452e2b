// -R kept across chains: asked again of each new chain, counted from the
// events of the current chain only, refusals reported and retried.
import { afterEach, describe, expect, it } from 'vitest';
import { EnvError } from '../../src/errors.js';
import { RemoteForward } from '../../src/execute/forward/remote.js';
import type { ForwardSpec } from '../../src/forward/types.js';
import { FakeChain } from './forward-fakes.js';

const forwards: RemoteForward[] = [];
afterEach(async () => {
  for (const f of forwards.splice(0)) await f.close();
});

const spec = (listen: ForwardSpec['listen']): ForwardSpec => ({
  kind: 'remote',
  listen,
  to: { host: 'localhost', port: 5432 },
  text: '-R 5432:localhost:5432',
  source: 'moshproxy.yaml:12',
});

function remote(s: ForwardSpec): RemoteForward {
  const f = new RemoteForward(s, 'target');
  forwards.push(f);
  return f;
}

describe('RemoteForward', () => {
  it('asks the target for localhost when no address is given, as ssh does, and again on each chain', async () => {
    const f = remote(spec({ port: 5432 }));
    const first = new FakeChain();
    await f.attach(first);
    expect(first.forwards).toMatchObject([
      { host: 'target', at: { host: 'localhost', port: 5432 }, to: { host: 'localhost', port: 5432 } },
    ]);
    expect(f.status()).toMatchObject({ text: '-R 5432:localhost:5432', listening: true, open: 0 });
    f.detach(first);
    expect(f.status().listening).toBe(false);
    const second = new FakeChain();
    await f.attach(second);
    expect(second.forwards).toHaveLength(1);
    expect(f.status().listening).toBe(true);
  });

  it('passes a Unix socket path and an address as given', async () => {
    const chain = new FakeChain();
    await remote(spec({ path: '/run/user/1000/app.sock' })).attach(chain);
    await remote(spec({ host: '0.0.0.0', port: 80 })).attach(chain);
    expect(chain.forwards.map((f) => f.at)).toEqual([
      { path: '/run/user/1000/app.sock' },
      { host: '0.0.0.0', port: 80 },
    ]);
  });

  it('keeps the port the target chose for port 0 on later chains, and lets it choose again if that is taken', async () => {
    const f = remote(spec({ port: 0 }));
    const first = new FakeChain();
    first.onForward = () => Promise.resolve({ port: 41000 });
    await f.attach(first);
    expect(f.status().port).toBe(41000);
    f.detach(first);
    const second = new FakeChain();
    second.onForward = (at) =>
      'port' in at && at.port === 41000
        ? Promise.reject(new Error('request refused'))
        : Promise.resolve({ port: 42000 });
    await f.attach(second);
    expect(second.forwards.map((x) => x.at)).toEqual([
      { host: 'localhost', port: 41000 },
      { host: 'localhost', port: 0 },
    ]);
    expect(f.status()).toMatchObject({ listening: true, port: 42000 });
  });

  it('counts connections from the current chain, and those open when it went as broken', async () => {
    const f = remote(spec({ port: 5432 }));
    const first = new FakeChain();
    await f.attach(first);
    const ev = first.forwards[0]?.events;
    ev?.onConnection?.();
    ev?.onConnection?.();
    ev?.onClosed?.(false);
    ev?.onError?.('connect to localhost:5432 here: Connection refused');
    expect(f.status()).toMatchObject({
      open: 1,
      total: 3,
      refused: 1,
      broken: 0,
      lastError: expect.stringMatching(/refused/) as string,
    });
    f.detach(first);
    expect(f.status()).toMatchObject({ open: 0, broken: 1 });
    // Late news from the chain that went changes nothing.
    ev?.onClosed?.(true);
    ev?.onConnection?.();
    expect(f.status()).toMatchObject({ open: 0, total: 3, broken: 1 });
  });

  it('rejects attach with an EnvError naming the forward when the target refuses; asked again, it listens', async () => {
    const f = remote(spec({ port: 5432 }));
    const chain = new FakeChain();
    let answer = (): Promise<{ port?: number }> => Promise.reject(new Error('remote port forwarding failed'));
    chain.onForward = () => answer();
    const err = (await f.attach(chain).catch((e: unknown) => e)) as EnvError;
    expect(err).toBeInstanceOf(EnvError);
    expect(err.message).toBe(
      '-R 5432:localhost:5432 (moshproxy.yaml:12): target refused to listen at localhost:5432: remote port forwarding failed',
    );
    expect(f.status()).toMatchObject({ listening: false, lastError: 'remote port forwarding failed' });
    // The supervisor attaches it again on the same chain (chain-supervisor.test.ts: the retries and their bound).
    answer = () => Promise.resolve({});
    await f.attach(chain);
    expect(f.status()).toMatchObject({ listening: true });
    expect(f.status().lastError).toBeUndefined();
    expect(chain.forwards).toHaveLength(2);
  });

  it('a late answer of a chain already gone changes nothing', async () => {
    const f = remote(spec({ port: 5432 }));
    const gone = new FakeChain();
    let accept!: (v: { port?: number }) => void;
    gone.onForward = () => new Promise((r) => (accept = r));
    const asked = f.attach(gone);
    f.detach(gone);
    accept({});
    await asked;
    expect(f.status().listening).toBe(false);
  });
});

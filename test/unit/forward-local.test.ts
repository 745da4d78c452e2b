// -L kept across chains: real listeners and sockets on loopback, the ssh chain
// faked (its "target" is this machine). What a program using the forward sees
// while the chain is up, down, replaced, and what status counts.
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EnvError } from '../../src/errors.js';
import { LocalForward } from '../../src/execute/forward/local.js';
import type { ForwardSpec } from '../../src/forward/types.js';
import { echo, FakeChain, FakeKept, roundTrip, tcpServer, until } from './forward-fakes.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function spec(listen: ForwardSpec['listen'], to: ForwardSpec['to']): ForwardSpec {
  return { kind: 'local', listen, to, text: '-L test', source: 'command line' };
}

async function forward(
  s: ForwardSpec,
  opts: { waitMs?: number; up?: boolean } = {},
): Promise<{ fwd: LocalForward; kept: FakeKept; chain: FakeChain; port: number }> {
  const kept = new FakeKept();
  const chain = new FakeChain();
  if (opts.up ?? true) kept.up(chain);
  const fwd = new LocalForward(s, 'target', kept, { waitMs: opts.waitMs ?? 2_000 });
  await fwd.start();
  cleanups.push(() => fwd.close());
  return { fwd, kept, chain, port: fwd.status().port ?? 0 };
}

async function echoServer(): Promise<number> {
  const srv = await tcpServer(echo);
  cleanups.push(srv.close);
  return srv.port;
}

describe('LocalForward over TCP', () => {
  it('carries bytes both ways, a megabyte with backpressure', async () => {
    const { fwd, port, kept } = await forward(
      spec({ port: 0 }, { host: 'localhost', port: await echoServer() }),
    );
    const data = Buffer.alloc(1 << 20, 'moshctl');
    const { got } = await roundTrip({ port }, data);
    expect(got.equals(data)).toBe(true);
    expect(kept.asked[0]).toEqual({ host: 'target', timeoutMs: 2_000 });
    await until(() => fwd.status().open === 0);
    expect(fwd.status()).toMatchObject({
      text: '-L test',
      listening: true,
      open: 0,
      total: 1,
      broken: 0,
      refused: 0,
    });
  });

  it('binds loopback only when no address is given, as ssh does', async () => {
    const { port } = await forward(spec({ port: 0 }, { host: 'localhost', port: 9 }));
    const srv = net.createServer();
    // The same port on another address is free: only 127.0.0.1 was bound.
    await new Promise<void>((resolve, reject) =>
      srv.once('error', reject).listen({ host: '::1', port }, resolve),
    );
    await new Promise((r) => srv.close(r));
  });

  it("binds every interface, IPv4 and IPv6, for '*'", async () => {
    const { port } = await forward(
      spec({ host: '*', port: 0 }, { host: 'localhost', port: await echoServer() }),
    );
    expect((await roundTrip({ host: '127.0.0.1', port }, 'four')).got.toString()).toBe('four');
    expect((await roundTrip({ host: '::1', port }, 'six')).got.toString()).toBe('six');
  });

  it('passes a half-close on: the far side answers after the client stopped sending', async () => {
    // Reads everything until EOF, then answers: only works if the client's EOF got through.
    const srv = await tcpServer((s) => {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => s.end(`got ${n} bytes`));
    });
    cleanups.push(srv.close);
    const { port } = await forward(spec({ port: 0 }, { host: '127.0.0.1', port: srv.port }));
    expect((await roundTrip({ port }, 'x'.repeat(5000))).got.toString()).toBe('got 5000 bytes');
  });

  it('holds a connection made while the chain is down, and carries it once a chain is up', async () => {
    const { fwd, port, kept, chain } = await forward(
      spec({ port: 0 }, { host: 'localhost', port: await echoServer() }),
      {
        up: false,
      },
    );
    const trip = roundTrip({ port }, 'waited');
    await until(() => kept.asked.length === 1);
    expect(fwd.status()).toMatchObject({ open: 1, total: 1 });
    kept.up(chain);
    expect((await trip).got.toString()).toBe('waited');
    expect(fwd.status()).toMatchObject({ refused: 0, broken: 0 });
  });

  it('refuses a connection when no chain came within the bound, and says why', async () => {
    const { fwd, port } = await forward(spec({ port: 0 }, { host: 'localhost', port: 9 }), {
      up: false,
      waitMs: 150,
    });
    const started = Date.now();
    const { got } = await roundTrip({ port }, 'lost');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(got.length).toBe(0);
    await until(() => fwd.status().open === 0);
    expect(fwd.status()).toMatchObject({ listening: true, refused: 1, open: 0 });
    expect(fwd.status().lastError).toMatch(/ssh chain to target was not up within 150 ms/);
  });

  it("counts the target's refusal and keeps its words for status", async () => {
    const closed = await tcpServer(() => {});
    await closed.close();
    const { fwd, port } = await forward(spec({ port: 0 }, { host: '127.0.0.1', port: closed.port }));
    expect((await roundTrip({ port }, 'x')).got.length).toBe(0);
    await until(() => fwd.status().refused === 1);
    expect(fwd.status().lastError).toMatch(/Connection refused/);
  });

  it('breaks connections of a chain that is gone at once, and carries new ones on the next', async () => {
    const { fwd, port, kept, chain } = await forward(
      spec({ port: 0 }, { host: 'localhost', port: await echoServer() }),
    );
    const client = net.connect({ port });
    const closed = new Promise((r) => client.once('close', r));
    client.on('error', () => {});
    client.write('hello');
    await new Promise((r) => client.once('data', r));
    expect(fwd.status().open).toBe(1);
    kept.down();
    fwd.detach(chain);
    await closed;
    await until(() => fwd.status().open === 0);
    expect(fwd.status()).toMatchObject({ broken: 1, open: 0, total: 1 });
    const next = new FakeChain('next');
    kept.up(next);
    await fwd.attach(next);
    expect((await roundTrip({ port }, 'again')).got.toString()).toBe('again');
    expect(next.opened).toHaveLength(1);
    expect(fwd.status()).toMatchObject({ broken: 1, total: 2 });
  });

  it('moves a connection still opening on a chain that went to the next chain', async () => {
    const { fwd, port, kept, chain } = await forward(
      spec({ port: 0 }, { host: 'localhost', port: await echoServer() }),
    );
    chain.onOpen = () => new Promise(() => {}); // never answers: the chain is dead without knowing it
    const trip = roundTrip({ port }, 'moved');
    await until(() => chain.opened.length === 1);
    kept.down();
    fwd.detach(chain);
    const next = new FakeChain('next');
    kept.up(next);
    expect((await trip).got.toString()).toBe('moved');
    expect(fwd.status()).toMatchObject({ broken: 0, refused: 0 });
  });

  it('a client that resets is not counted as broken', async () => {
    const { fwd, port } = await forward(spec({ port: 0 }, { host: 'localhost', port: await echoServer() }));
    const client = net.connect({ port });
    client.write('x');
    await new Promise((r) => client.once('data', r));
    client.resetAndDestroy();
    await until(() => fwd.status().open === 0);
    expect(fwd.status()).toMatchObject({ broken: 0, total: 1 });
  });

  it('stops listening on close and ends the connections', async () => {
    const { fwd, port } = await forward(spec({ port: 0 }, { host: 'localhost', port: await echoServer() }));
    const client = net.connect({ port });
    client.on('error', () => {});
    const closed = new Promise((r) => client.once('close', r));
    client.write('x');
    await new Promise((r) => client.once('data', r));
    await fwd.close();
    await closed;
    expect(fwd.status().listening).toBe(false);
    expect((await roundTrip({ port }, 'x')).error).toMatch(/ECONNREFUSED/);
  });

  it('rejects start with an EnvError naming the forward when the port is taken', async () => {
    const taken = await tcpServer(() => {});
    cleanups.push(taken.close);
    const fwd = new LocalForward(
      { ...spec({ port: taken.port }, { host: 'localhost', port: 80 }), text: '-L 8080:localhost:80' },
      'target',
      new FakeKept(),
    );
    const err = (await fwd.start().catch((e: unknown) => e)) as EnvError;
    expect(err).toBeInstanceOf(EnvError);
    expect(err.message).toBe(
      `-L 8080:localhost:80 (command line): cannot listen on 127.0.0.1:${taken.port}: the address is in use`,
    );
    expect(err.hint).toMatch(/ss -ltnp 'sport = :\d+'.*another port in command line/);
  });
});

describe('LocalForward on a Unix socket', () => {
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'moshctl-fwd-'));
    cleanups.push(() => rmSync(d, { recursive: true, force: true }));
    return d;
  };

  it('listens with mode 0600, carries bytes, and removes the socket on close', async () => {
    const path = join(dir(), 'fwd.sock');
    const { fwd } = await forward(spec({ path }, { host: 'localhost', port: await echoServer() }));
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect((await roundTrip({ path }, 'unix')).got.toString()).toBe('unix');
    await fwd.close();
    expect(() => lstatSync(path)).toThrow(/ENOENT/);
  });

  it('replaces a stale socket nobody answers on', async () => {
    const path = join(dir(), 'stale.sock');
    // A listener that exits without closing leaves its socket file, as after a crash.
    const made = spawnSync(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`,
    ]);
    expect(made.status).toBe(0);
    expect(lstatSync(path).isSocket()).toBe(true);
    await forward(spec({ path }, { host: 'localhost', port: await echoServer() }));
    expect((await roundTrip({ path }, 'fresh')).got.toString()).toBe('fresh');
  });

  it('refuses a socket someone listens on, and a file that is not a socket', async () => {
    const d = dir();
    const live = join(d, 'live.sock');
    const other = net.createServer().listen(live);
    cleanups.push(() => void other.close());
    await new Promise((r) => other.once('listening', r));
    await expect(
      new LocalForward(spec({ path: live }, { host: 'h', port: 1 }), 'target', new FakeKept()).start(),
    ).rejects.toThrow(/cannot listen on .*live\.sock: another program listens there/);
    const file = join(d, 'file');
    writeFileSync(file, 'keep me');
    await expect(
      new LocalForward(spec({ path: file }, { host: 'h', port: 1 }), 'target', new FakeKept()).start(),
    ).rejects.toThrow(/a file that is not a socket is there/);
    expect(lstatSync(file).isFile()).toBe(true);
  });
});

// -D: the real curl as the SOCKS client in each of its dialects, a real HTTP
// server as what the target reaches, the ssh chain faked (its "target" is this
// machine and resolves the names the test gives it).
import { execFile, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LocalForward } from '../../src/execute/forward/local.js';
import type { ForwardSpec } from '../../src/forward/types.js';
import { FakeChain, FakeKept, until } from './forward-fakes.js';
import { findOnPath } from '../../src/which.js';

const CURL = findOnPath('curl', process.env.PATH);
const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const c of cleanups.splice(0).reverse()) await c();
});

const DYNAMIC: ForwardSpec = {
  kind: 'dynamic',
  listen: { port: 0 },
  text: '-D 1080',
  source: 'command line',
};

/** Answers every request with where it was asked for (the Host header), on 127.0.0.1 and ::1. */
async function httpServer(host: string): Promise<number> {
  const srv = http.createServer((req, res) => res.end(`hello from ${req.headers.host}`));
  await new Promise<void>((resolve) => srv.listen({ host, port: 0 }, resolve));
  cleanups.push(() => new Promise((r) => srv.close(() => r())));
  cleanups.push(() => srv.closeAllConnections());
  return (srv.address() as net.AddressInfo).port;
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(CURL ?? 'curl', ['-sS', '--max-time', '5', ...args], (err, stdout, stderr) => {
      children.delete(child);
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
    children.add(child);
  });
}

async function dynamic(opts: { waitMs?: number; up?: boolean } = {}) {
  const kept = new FakeKept();
  const chain = new FakeChain();
  chain.names.set('web.example', '127.0.0.1');
  chain.names.set('web6.example', '::1');
  if (opts.up ?? true) kept.up(chain);
  const fwd = new LocalForward(DYNAMIC, 'target', kept, { waitMs: opts.waitMs ?? 2_000 });
  await fwd.start();
  cleanups.push(() => fwd.close());
  return { fwd, kept, chain, proxy: `127.0.0.1:${fwd.status().port}` };
}

describe('LocalForward, dynamic (SOCKS)', () => {
  beforeAll(() => {
    // curl is how people use -D; without it this file proves nothing, so it fails rather than skips.
    expect(CURL, 'curl is needed for these tests (apt install curl)').toBeDefined();
  });

  it.each([
    ['SOCKS4 with an address', ['--socks4'], '127.0.0.1', '127.0.0.1'],
    ['SOCKS4a with a name', ['--socks4a'], 'web.example', 'web.example'],
    ['SOCKS5 with a name resolved at the target', ['--socks5-hostname'], 'web.example', 'web.example'],
    ['SOCKS5 with an IPv4 address', ['--socks5'], '127.0.0.1', '127.0.0.1'],
    ['SOCKS5 with an IPv6 address', ['--socks5'], '[::1]', '::1'],
    ['SOCKS5 with a name for an IPv6 host', ['--socks5-hostname'], 'web6.example', 'web6.example'],
  ])('%s', async (_name, flag, urlHost, askedHost) => {
    const port = await httpServer(urlHost.includes('6') || urlHost.includes(':') ? '::1' : '127.0.0.1');
    const { fwd, chain, proxy } = await dynamic();
    const got = await curl([...flag, proxy, `http://${urlHost}:${port}/`]);
    expect(got).toMatchObject({ code: 0, stdout: `hello from ${urlHost}:${port}` });
    // The name goes to the target's sshd as it was asked: resolved there, not here.
    expect(chain.opened).toEqual([{ host: 'target', to: { host: askedHost, port } }]);
    await until(() => fwd.status().open === 0);
    expect(fwd.status()).toMatchObject({ total: 1, refused: 0, broken: 0 });
  });

  it('answers a name the target cannot resolve with "host unreachable"', async () => {
    const { fwd, chain, proxy } = await dynamic();
    chain.onOpen = (to) =>
      Promise.reject(
        new Error(`connect to ${'host' in to ? to.host : ''}:80 from target: Name or service not known`),
      );
    const got = await curl(['--socks5-hostname', proxy, 'http://nowhere.example/']);
    expect(got.code).not.toBe(0);
    // curl 7.88 prints the reply code, later versions its meaning.
    expect(got.stderr).toMatch(/\(4\)|host unreachable/i);
    await until(() => fwd.status().refused === 1);
    expect(fwd.status().lastError).toMatch(/Name or service not known/);
  });

  it('answers SOCKS4 with "rejected" when no chain came within the bound', async () => {
    const { fwd, proxy } = await dynamic({ up: false, waitMs: 150 });
    const got = await curl(['--socks4a', proxy, 'http://web.example/']);
    expect(got.code).not.toBe(0);
    expect(got.stderr).toMatch(/rejected|failed/i);
    await until(() => fwd.status().refused === 1);
    expect(fwd.status().lastError).toMatch(/not up within 150 ms/);
  });

  it('answers SOCKS5 with "network unreachable" when no chain came within the bound', async () => {
    const { proxy } = await dynamic({ up: false, waitMs: 150 });
    expect(await rawExchange(proxy, Buffer.from([5, 1, 0, 5, 1, 0, 3, 3, 0x61, 0x62, 0x63, 0, 80]))).toEqual(
      Buffer.from([5, 0, 5, 3, 0, 1, 0, 0, 0, 0, 0, 0]),
    );
  });

  it('answers BIND with "command not supported" and counts it refused', async () => {
    const { fwd, proxy } = await dynamic();
    expect(await rawExchange(proxy, Buffer.from([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]))).toEqual(
      Buffer.from([5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]),
    );
    await until(() => fwd.status().refused === 1);
    expect(fwd.status().lastError).toMatch(/BIND is not supported/);
  });

  it('passes on data the client sent right after its request', async () => {
    const port = await httpServer('127.0.0.1');
    const { proxy } = await dynamic();
    const request = Buffer.concat([
      Buffer.from([4, 1, port >> 8, port & 0xff, 127, 0, 0, 1, 0]),
      Buffer.from('GET / HTTP/1.0\r\nHost: early\r\n\r\n'),
    ]);
    const got = (await rawExchange(proxy, request)).toString('latin1');
    expect(got.startsWith('\0\x5a')).toBe(true);
    expect(got).toMatch(/hello from early$/);
  });
});

/** Sends `bytes` at once and returns everything the proxy sent until it closed. */
function rawExchange(proxy: string, bytes: Buffer): Promise<Buffer> {
  const [host, port] = proxy.split(':');
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port: Number(port) });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.on('connect', () => s.write(bytes));
  });
}

// relay.py for real, on 127.0.0.1 only: a fake mosh-server that answers only
// "authentic" datagrams (ones starting with a secret token), clients and spoofers.
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRelayOutput, relayCommand } from '../../src/relay/commands.js';
import { readRelayScript } from '../../src/relay/script.js';

const hasPython =
  spawnSync('python3', ['-c', 'import sys; sys.exit(sys.version_info < (3, 6))']).status === 0;
const TOKEN = 'SECRET:';
const LOOPBACK = '127.0.0.1';
const pids: number[] = [];
const sockets: dgram.Socket[] = [];

function isDead(pid: number): boolean {
  try {
    // The daemon is reparented to an init that may never reap it: a zombie is dead.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /\) [ZX] /.test(stat);
  } catch {
    return true;
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

async function udp(): Promise<dgram.Socket & { got: string[] }> {
  const s = Object.assign(dgram.createSocket('udp4'), { got: [] as string[] });
  sockets.push(s);
  s.on('message', (m) => s.got.push(m.toString()));
  await new Promise<void>((r) => s.bind(0, LOOPBACK, r));
  return s;
}

/** The fake mosh-server: echoes authentic datagrams to whoever sent them, records their source ports. */
async function fakeServer(): Promise<{ port: number; from: number[]; seen: () => number }> {
  const s = await udp();
  const from: number[] = [];
  let seen = 0;
  s.on('message', (m, rinfo) => {
    seen++;
    if (!m.toString().startsWith(TOKEN)) return; // "does not decrypt": no reply, no roam
    from.push(rinfo.port);
    s.send(`REPLY ${m.toString()}`, rinfo.port, rinfo.address);
  });
  return { port: s.address().port, from, seen: () => seen };
}

let nextPort = 40000 + Math.floor(Math.random() * 200) * 40;

/** Start relay.py exactly as the executor does: the command's argv, the script on stdin. */
async function startRelay(opts: {
  ports?: string;
  to: number;
  idle?: number;
  max?: number;
  extra?: string[];
}) {
  const from = nextPort;
  nextPort += 10;
  const { command, stdin } = relayCommand(
    {
      runtime: 'python3',
      listen: { from, to: from + 9 },
      to: { address: LOOPBACK, port: opts.to },
      idleTimeout: opts.idle ?? 30,
      ...(opts.max ? { maxClients: opts.max } : {}),
    },
    await readRelayScript(),
  );
  let argv = command.replace(/^exec python3 - /, '').split(' ');
  if (opts.ports) argv = argv.map((a) => (/^\d+-\d+$/.test(a) ? opts.ports! : a));
  const child = spawn('python3', ['-', ...argv, ...(opts.extra ?? [])], { stdio: 'pipe' });
  if (child.pid) pids.push(child.pid);
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdin.end(stdin);
  // 'close' fires only once every holder of the stdio pipes is gone: the daemon must not be one.
  const code = await new Promise<number | null>((r) => child.on('close', r));
  const ready = parseRelayOutput(stdout);
  if (ready && 'pid' in ready) pids.push(ready.pid);
  return { code, stdout, ready };
}

async function ready(to: number, more: { idle?: number; max?: number } = {}) {
  const r = await startRelay({ to, ...more });
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^MOSHCTL-RELAY LISTEN \d+ PID \d+\n$/);
  if (!r.ready || !('pid' in r.ready)) throw new Error(`relay did not start: ${r.stdout}`);
  return r.ready;
}

const send = (s: dgram.Socket, port: number, text: string) => s.send(text, port, LOOPBACK);

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  const mine = pids.splice(0);
  for (const pid of mine) if (!isDead(pid)) process.kill(pid, 'SIGTERM');
  await waitFor(() => mine.every(isDead), 2000);
  for (const pid of mine) if (!isDead(pid)) process.kill(pid, 'SIGKILL');
  await waitFor(() => mine.every(isDead), 1000);
  expect(mine.filter((p) => !isDead(p))).toEqual([]);
});

describe.skipIf(!hasPython)(`relay.py${hasPython ? '' : ' (skipped: python3 >= 3.6 not found)'}`, () => {
  it('relays a client, follows a roam to a new source port, and stops on SIGTERM', async () => {
    const server = await fakeServer();
    const relay = await ready(server.port);
    const a = await udp();
    send(a, relay.port, `${TOKEN}a1`);
    expect(await waitFor(() => a.got.includes(`REPLY ${TOKEN}a1`), 2000)).toBe(true);

    const b = await udp(); // the client roamed: same session, new source port
    send(b, relay.port, `${TOKEN}b1`);
    expect(await waitFor(() => b.got.includes(`REPLY ${TOKEN}b1`), 2000)).toBe(true);
    expect(a.got).toEqual([`REPLY ${TOKEN}a1`]); // the reply went to the socket that spoke
    expect(new Set(server.from).size).toBe(2); // each client address has its own upstream socket

    process.kill(relay.pid, 'SIGTERM');
    expect(await waitFor(() => isDead(relay.pid), 2000)).toBe(true);
  });

  it('gives a spoofer nothing and leaves the real client alone', async () => {
    const server = await fakeServer();
    const relay = await ready(server.port);
    const real = await udp();
    const spoofer = await udp();
    send(real, relay.port, `${TOKEN}r1`);
    expect(await waitFor(() => real.got.length === 1, 2000)).toBe(true);
    for (let i = 0; i < 20; i++) send(spoofer, relay.port, `forged ${i}`);
    expect(await waitFor(() => server.seen() >= 21, 2000)).toBe(true); // they did reach the server
    send(real, relay.port, `${TOKEN}r2`);
    expect(await waitFor(() => real.got.length === 2, 2000)).toBe(true);
    expect(spoofer.got).toEqual([]);
  });

  it('does not evict an answered client when spoofed source ports flood past max-clients', async () => {
    const server = await fakeServer();
    const relay = await ready(server.port, { max: 4 });
    const real = await udp();
    send(real, relay.port, `${TOKEN}before`);
    expect(await waitFor(() => real.got.length === 1, 2000)).toBe(true);
    const upstream = server.from[0];
    for (let i = 0; i < 20; i++) send(await udp(), relay.port, 'forged');
    expect(await waitFor(() => server.seen() >= 21, 2000)).toBe(true);
    send(real, relay.port, `${TOKEN}after`);
    expect(await waitFor(() => real.got.length === 2, 2000)).toBe(true);
    // Same upstream socket as before the flood: its entry was never evicted.
    expect(server.from).toEqual([upstream, upstream]);
  });

  it('exits after --idle-timeout without upstream replies, even while spoofed packets arrive', async () => {
    const server = await fakeServer();
    const relay = await ready(server.port, { idle: 2 });
    const spoofer = await udp();
    const started = Date.now();
    const timer = setInterval(() => send(spoofer, relay.port, 'forged'), 100);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect(isDead(relay.pid)).toBe(false);
      expect(await waitFor(() => isDead(relay.pid), 3000)).toBe(true);
    } finally {
      clearInterval(timer);
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
    expect(server.seen()).toBeGreaterThan(5); // the spoofed packets were relayed all along
  });

  it('exits when the server never answered within the first-contact window, long before the idle timeout', async () => {
    // A relay moshctl lost before reading its ready line must not live for the whole idle timeout.
    const server = await fakeServer();
    const relay = (await startRelay({ to: server.port, idle: 600, extra: ['--first-contact', '2'] })).ready;
    if (!relay || !('pid' in relay)) throw new Error('relay did not start');
    expect(isDead(relay.pid)).toBe(false);
    expect(await waitFor(() => isDead(relay.pid), 4000)).toBe(true);
  });

  it('once answered, outlives the first-contact window', async () => {
    const server = await fakeServer();
    const relay = (await startRelay({ to: server.port, idle: 600, extra: ['--first-contact', '1'] })).ready;
    if (!relay || !('pid' in relay)) throw new Error('relay did not start');
    const client = await udp();
    send(client, relay.port, `${TOKEN}hello`);
    expect(await waitFor(() => client.got.length > 0, 2000)).toBe(true);
    await new Promise((r) => setTimeout(r, 2000));
    expect(isDead(relay.pid)).toBe(false);
  });

  it('says so and exits 3 when no port in the range is free', async () => {
    const blocker = dgram.createSocket('udp4');
    sockets.push(blocker);
    await new Promise<void>((r) => blocker.bind(0, '0.0.0.0', r));
    const port = blocker.address().port;
    const r = await startRelay({ to: 9, ports: `${port}-${port}` });
    expect(r).toMatchObject({ code: 3, stdout: `MOSHCTL-RELAY ERROR no free UDP port in ${port}-${port}\n` });
  });

  it('rejects bad arguments with exit 2', async () => {
    const r = await startRelay({ to: 9, extra: ['--bogus', '1'] });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^MOSHCTL-RELAY ERROR unknown argument/);
  });

  it('lives on after its launcher exited and closed its stdio', async () => {
    const server = await fakeServer();
    const relay = await ready(server.port); // resolved on 'close': all stdio pipes are shut
    await new Promise((r) => setTimeout(r, 300));
    expect(isDead(relay.pid)).toBe(false);
    const c = await udp();
    send(c, relay.port, `${TOKEN}late`);
    expect(await waitFor(() => c.got.length === 1, 2000)).toBe(true);
  });
});

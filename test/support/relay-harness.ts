// The harness of the relay runtime tests: relay v2 for real, in each runtime,
// started exactly as a hop would start it (launch.ts's command through
// /bin/sh -c, its stdin, then control lines), with loopback UDP sockets and a
// local echo server as the next hop. Everything started is tracked and killed
// by pid after each test (useRelayCleanup).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { STATUS, parseListen, parseStatus } from '../../src/relay/control.js';
import { relayLaunch, type RelayLaunchSpec, type RelayRuntime } from '../../src/relay/launch.js';

export const programs = {
  python3: readFileSync(new URL('../../src/relay/runtime/relay.py', import.meta.url), 'utf8'),
  perl: readFileSync(new URL('../../src/relay/runtime/relay.pl', import.meta.url), 'utf8'),
};

/** Set per variant: PATH finds that variant's interpreter first, under the runtime's name. */
let env: NodeJS.ProcessEnv = process.env;
/** PATH for one runtime variant (its interpreter first), in a beforeAll. */
export function useInterpreterPath(path: string): void {
  env = { ...process.env, PATH: `${path}:/usr/bin:/bin` };
}

export const TOKEN = 'AUTH:';
const children: ChildProcessWithoutNullStreams[] = [];
const pids: number[] = [];
/** Every socket a test opened (closed after it); one a test closed itself must be taken out. */
export const sockets: dgram.Socket[] = [];
/** What any relay wrote on stderr: a warning or a traceback is a bug even when the test passed. */
const stderr: string[] = [];

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export function isDead(pid: number): boolean {
  try {
    return /\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (cond()) return true;
  return cond();
}

export type Udp = dgram.Socket & { got: string[] };
export async function udp(family: 'udp4' | 'udp6' = 'udp4'): Promise<Udp> {
  const s = Object.assign(dgram.createSocket(family), { got: [] as string[] });
  sockets.push(s);
  s.on('message', (m) => s.got.push(m.toString()));
  await new Promise<void>((r) => s.bind(0, family === 'udp4' ? '127.0.0.1' : '::1', r));
  return s;
}

/** The next hop: echoes (only TOKEN-prefixed datagrams, when asked), records who sent what. */
export async function echoServer(family: 'udp4' | 'udp6' = 'udp4', onlyToken = false) {
  const s = await udp(family);
  const from: number[] = [];
  let seen = 0;
  s.on('message', (m, rinfo) => {
    seen++;
    if (onlyToken && !m.toString().startsWith(TOKEN)) return; // "does not decrypt": no reply
    from.push(rinfo.port);
    s.send(m, rinfo.port, rinfo.address);
  });
  return { port: s.address().port, from, seen: () => seen };
}

export interface Relay {
  child: ChildProcessWithoutNullStreams;
  lines: string[];
  next: () => Promise<string>;
  ask: (line: string | Buffer) => Promise<string>;
  code: Promise<number | null>;
  port: number;
  pid: number;
}

/** The first port of the range the latest relay was given. */
export let base = 53000 + Math.floor(Math.random() * 600) * 10;

/** Runs a command the way sshd does (login shell -c), stdin first, lines collected. */
export function spawnRelay(command: string, stdin: string): Omit<Relay, 'port' | 'pid'> {
  const child = spawn('/bin/sh', ['-c', command], { env });
  children.push(child);
  child.stderr.on('data', (d: Buffer) => stderr.push(d.toString()));
  const lines: string[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    const parts = (buf + d.toString()).split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stdin.on('error', () => {}); // EPIPE once it is gone
  child.stdin.write(stdin);
  const code = new Promise<number | null>((r) => child.on('close', r));
  let read = 0;
  const next = async () => {
    if (!(await waitFor(() => read < lines.length, 5000)))
      throw new Error(`no line; had ${JSON.stringify(lines)}`);
    return lines[read++]!;
  };
  const ask = (line: string | Buffer) => {
    child.stdin.write(line);
    return next();
  };
  return { child, lines, next, ask, code };
}

/** `before` runs in the login shell first, e.g. a ulimit. */
export async function start(
  runtime: RelayRuntime,
  more: Partial<RelayLaunchSpec> = {},
  before = '',
): Promise<Relay> {
  const from = (base += 10);
  const l = relayLaunch({ runtime, listen: { from, to: from + 9 }, idleTimeout: 30, ...more }, programs);
  const r = spawnRelay(`${before}${l.command}`, l.stdin);
  const listen = parseListen(await r.next());
  if (!listen || !('pid' in listen)) throw new Error(`relay did not start: ${JSON.stringify(r.lines)}`);
  pids.push(listen.pid);
  expect(listen.runtime).toBe(runtime);
  // The relay names its own start (field 22 of /proc/PID/stat), for stops by pid.
  expect(listen.started).toBe(
    readFileSync(`/proc/${listen.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19],
  );
  return { ...r, port: listen.port, pid: listen.pid };
}

export const send = (s: dgram.Socket, port: number, text: string | Buffer) =>
  s.send(text, port, s.address().family === 'IPv6' ? '::1' : '127.0.0.1');
export async function status(r: Relay) {
  const s = parseStatus(await r.ask(STATUS));
  if (!s) throw new Error(`bad STATUS: ${r.lines.at(-1)}`);
  return s;
}

/** Kills every relay, socket and child a test left, and fails the test on anything a relay said on stderr. */
export function useRelayCleanup(): void {
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.close();
    const mine = pids.splice(0);
    for (const pid of mine) if (!isDead(pid)) process.kill(pid, 'SIGKILL');
    for (const c of children.splice(0)) c.kill('SIGKILL');
    expect(await waitFor(() => mine.every(isDead), 2000)).toBe(true);
    // sh itself reports a child killed by a signal ("Terminated"): that is not the relay talking
    const said = stderr
      .splice(0)
      .join('')
      .replace(/^(Killed|Terminated|Interrupt|Hangup)\n/gm, '');
    expect(said).toBe('');
  });
}

// Small servers a forwarding test points its forwards at: an HTTP server with
// a known body on one host's loopback (the target's for -L and -D, the
// client's for -R), and an ssh-agent in the client namespace with a fresh key
// (for -A). Each is a lab-tracked process started with spawn() and stopped by
// its (pid, start time) pair, by stop() or at the lab's destroy().

import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKey } from './sshd.js';
import { mustRun, refOf, stopAll, type RunResult } from './proc.js';
import type { HostName } from './topology.js';
import type { ExecOptions } from './types.js';
import type { LabUser } from './users.js';

/** The parts of a Lab these helpers use (structural, so index.ts need not grow). */
export interface ServiceLab {
  readonly dir: string;
  readonly runId: string;
  readonly clientUser: LabUser | undefined;
  readonly clientUserFiles: { dir: string } | undefined;
  exec(host: HostName, argv: readonly string[], opts?: ExecOptions): Promise<RunResult>;
  spawn(
    host: HostName,
    argv: readonly string[],
    opts?: { logFile?: string; env?: NodeJS.ProcessEnv },
  ): number;
  canReach(from: HostName, address: string, port?: number): Promise<boolean>;
  asClientUser(argv: readonly string[], env?: Record<string, string>): string[];
}

/** A process the lab started and tracks; stop() ends it by pid (its start time checked) before the lab goes. */
export interface LabProcess {
  pid: number;
  stop(): Promise<void>;
}

/** spawn() with the process's start time taken at once, so a later stop() never signals a reused pid. */
export function spawnTracked(
  lab: Pick<ServiceLab, 'spawn'>,
  host: HostName,
  argv: readonly string[],
  opts: { logFile?: string; env?: NodeJS.ProcessEnv } = {},
): LabProcess {
  const pid = lab.spawn(host, argv, opts);
  const ref = refOf(pid);
  return {
    pid,
    stop: async () => {
      await stopAll([ref], 500);
    },
  };
}

export type HttpRuntime = 'python3' | 'perl';

/**
 * A one-file HTTP/1.0 server in perl (Debian's perl-base is Essential): one
 * connection at a time, any GET answered with the file, which is enough for curl.
 * Arguments: ADDRESS PORT FILE.
 */
const PERL_HTTP = String.raw`
use strict; use IO::Socket::INET;
my ($addr, $port, $file) = @ARGV;
my $l = IO::Socket::INET->new(LocalAddr => $addr, LocalPort => $port, Listen => 16, ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
$SIG{PIPE} = 'IGNORE';
while (my $c = $l->accept) {
  my $line = <$c> // ''; while (my $h = <$c>) { last if $h =~ /^\r?\n$/ }
  open(my $f, '<', $file) or do { close $c; next }; local $/; my $body = <$f>; close $f;
  my $ok = $line =~ m{^GET /}; my $out = $ok ? $body : "bad request\n";
  print $c ($ok ? "HTTP/1.0 200 OK" : "HTTP/1.0 400 Bad Request") . "\r\nContent-Type: text/plain\r\nContent-Length: " . length($out) . "\r\nConnection: close\r\n\r\n" . $out;
  close $c;
}
`;

/** argv of an HTTP server that serves `dir` (python3) or `dir/FILE` at any path (perl), on address:port. */
export function httpServerArgv(
  runtime: HttpRuntime,
  address: string,
  port: number,
  dir: string,
  file: string,
): string[] {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad port ${port}`);
  if (!/^[0-9a-fA-F.:]+$/.test(address)) throw new Error(`bad listen address "${address}"`);
  return runtime === 'python3'
    ? ['python3', '-m', 'http.server', '--bind', address, '--directory', dir, String(port)]
    : ['perl', '-e', PERL_HTTP, address, String(port), join(dir, file)];
}

export interface HttpServer extends LabProcess {
  host: HostName;
  address: string;
  port: number;
  runtime: HttpRuntime;
  /** The path to ask for (`/hello.txt`): its answer is `body`. */
  path: string;
  /** One line naming the host and a random token, so a reply proves where it came from. */
  body: string;
  /** `http://ADDRESS:PORT/hello.txt`, as seen from `host` itself. */
  url: string;
}

/**
 * An HTTP server on `host` at address:port (default 127.0.0.1) serving a
 * known body, answering before this returns. The runtime is python3's
 * http.server when it runs there, else a perl one (or `opts.runtime`).
 */
export async function serveHttp(
  lab: ServiceLab,
  host: HostName,
  port: number,
  opts: { address?: string; runtime?: HttpRuntime } = {},
): Promise<HttpServer> {
  const address = opts.address ?? '127.0.0.1';
  const runtime =
    opts.runtime ?? ((await lab.exec(host, ['python3', '-c', '0'])).code === 0 ? 'python3' : 'perl');
  const dir = join(lab.dir, `http-${host}-${port}`);
  mkdirSync(dir, { mode: 0o755 });
  const file = 'hello.txt';
  const body = `moshctl-lab ${host} ${randomBytes(8).toString('hex')}\n`;
  writeFileSync(join(dir, file), body, { mode: 0o644 });
  const proc = spawnTracked(lab, host, httpServerArgv(runtime, address, port, dir, file), {
    logFile: join(dir, '..', `http-${host}-${port}.log`),
  });
  await waitForListener(lab, host, address, port, proc);
  return {
    ...proc,
    host,
    address,
    port,
    runtime,
    path: `/${file}`,
    body,
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}/${file}`,
  };
}

async function waitForListener(
  lab: ServiceLab,
  host: HostName,
  address: string,
  port: number,
  proc: LabProcess,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await lab.canReach(host, address, port))) {
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`a server on ${host} did not listen on ${address}:${port} within 10 s`);
    }
    await sleep(50);
  }
}

// Binds `n` random ports of 20000-29999 on 127.0.0.1 at once (so they differ), prints them, closes them.
const PICK_PORTS = `
const net = require('net'); const n = Number(process.argv[1]); const held = []; let tries = 0;
const next = () => {
  if (held.length === n) { console.log(held.map((s) => s.address().port).join(' ')); held.forEach((s) => s.close()); return; }
  if (++tries > 1000) { console.error('no free port'); process.exit(1); }
  const s = net.createServer();
  s.once('error', next);
  s.listen(20000 + Math.floor(Math.random() * 10000), '127.0.0.1', () => { held.push(s); next(); });
};
next();`;

/**
 * `n` different TCP ports nothing listens on in `host`'s namespace now, below
 * the kernel's ephemeral range (32768 and up) so no outgoing connection's
 * source port takes one meanwhile. Lab namespaces are new and empty, so they
 * stay free unless the test itself takes them.
 */
export async function freeTcpPorts(
  lab: Pick<ServiceLab, 'exec'>,
  host: HostName,
  n: number,
): Promise<number[]> {
  const r = await lab.exec(host, [process.execPath, '-e', PICK_PORTS, String(n)]);
  const ports = r.stdout.trim().split(' ').map(Number);
  if (r.code !== 0 || ports.length !== n || !ports.every((p) => Number.isInteger(p) && p > 0))
    throw new Error(`no free ports on ${host}: ${r.stderr.trim()}`);
  return ports;
}

/** One port as freeTcpPorts() picks them. */
export async function freeTcpPort(lab: Pick<ServiceLab, 'exec'>, host: HostName): Promise<number> {
  const [port] = await freeTcpPorts(lab, host, 1);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}

export interface LabAgent extends LabProcess {
  /** The agent's socket (SSH_AUTH_SOCK), in the lab dir (or the client user's dir). */
  socket: string;
  /** The key loaded in it, in no authorized_keys: it is for a next hop, not for the lab's hosts. */
  keyFile: string;
  /** `SHA256:…` as `ssh-add -l` and `ssh-keygen -l` print it. */
  fingerprint: string;
  /** The key's comment: `moshctl-lab-agent-<runId>`. */
  comment: string;
  /** `{ SSH_AUTH_SOCK: socket }`, for the environment of moshctl or ssh. */
  env: { SSH_AUTH_SOCK: string };
}

/** `ssh-keygen -l` output → `SHA256:…`. */
export function fingerprintOf(keygenListing: string): string {
  const m = /^\d+ (SHA256:[A-Za-z0-9+/]+=*) /m.exec(keygenListing);
  if (!m?.[1]) throw new Error(`no fingerprint in "${keygenListing.trim()}"`);
  return m[1];
}

/**
 * An ssh-agent in the client namespace holding one fresh ed25519 key, run by
 * root or (`asClientUser`) by the lab's client user, whose agent only it may
 * use (ssh-agent refuses other uids but root). Loaded and listed before this
 * returns.
 */
export async function startAgent(lab: ServiceLab, opts: { asClientUser?: boolean } = {}): Promise<LabAgent> {
  const user = opts.asClientUser ? lab.clientUser : undefined;
  if (opts.asClientUser && (!user || !lab.clientUserFiles)) throw new Error('the lab has no client user');
  const dir = user && lab.clientUserFiles ? lab.clientUserFiles.dir : lab.dir;
  const tag = randomBytes(3).toString('hex');
  const socket = join(dir, `agent-${tag}.sock`);
  const keyFile = join(dir, `agent-${tag}-key`);
  const comment = `moshctl-lab-agent-${lab.runId}`;
  await generateKey(keyFile, comment);
  if (user) for (const f of [keyFile, `${keyFile}.pub`]) chownSync(f, user.uid, user.gid);
  const fingerprint = fingerprintOf(await mustRun(['ssh-keygen', '-l', '-f', `${keyFile}.pub`]));
  const as = (argv: string[], env: Record<string, string> = {}): string[] =>
    user
      ? lab.asClientUser(argv, env)
      : ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
  // -D: in the foreground, so the pid spawn() reports is the agent's own.
  const proc = spawnTracked(lab, 'client', as(['ssh-agent', '-D', '-a', socket]), {
    logFile: join(lab.dir, `agent-${tag}.log`),
  });
  const env = { SSH_AUTH_SOCK: socket };
  try {
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (Date.now() > deadline) throw new Error(`ssh-agent did not make ${socket} within 10 s`);
      await sleep(25);
    }
    const add = await lab.exec('client', as(['ssh-add', '-q', keyFile], env));
    if (add.code !== 0) throw new Error(`ssh-add ${keyFile}: ${add.stderr.trim()}`);
    const list = await lab.exec('client', as(['ssh-add', '-l'], env));
    if (!list.stdout.includes(fingerprint))
      throw new Error(`ssh-add -l does not list the key: ${list.stdout}`);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { ...proc, socket, keyFile, fingerprint, comment, env };
}

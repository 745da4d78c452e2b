// Forwarding over the ssh chain, for both clients, against the lab's real
// sshd servers: streams the target's sshd opens (RemoteChain.openConnection,
// what -L and -D carry), listeners it keeps for us (remoteForward, -R), and
// the agent forwarded to the target and to no other hop.
//
// The test process lives outside the lab's namespaces. ssh2 reaches the first
// bastion through the lab's broker bridge (a unix socket into the bastion's
// namespace) behind a TCP relay here; OpenSSH's `ssh` is a two-line script
// that runs the real one in the client namespace, as in openssh-chain.test.ts.
// So "this machine" of a remote forward is the test process for ssh2, and the
// client namespace for OpenSSH (its master connects there): each gets a
// server it can reach. Socket paths are on the file system, which every
// namespace shares.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import { EnvError } from '../../src/errors.js';
import type { Endpoint } from '../../src/forward/types.js';
import { realProgramPath, type Lab, type LabOptions } from '../../src/lab/index.js';
import { execArgv } from '../../src/openssh/argv.js';
import { connectOpenSshChain } from '../../src/openssh/connect.js';
import { connectChain } from '../../src/ssh/connect.js';
import type { ConnectOptions, LineChannel, RemoteChain } from '../../src/transport/types.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';
import { sshHost } from '../support/ssh-host.js';

const reason = e2eSkipReason();
type Client = (typeof SSH_CLIENTS)[number];
type Hop = 'bastion' | 'bastion2' | 'target';

/** On the target's loopback: a greeting server, a port nothing listens on, and one PermitOpen leaves out. */
const SERVED = 7001;
const CLOSED = 7002;
const FORBIDDEN = 7003;
/** The greeting server OpenSSH's master reaches in the client namespace. */
const PERMIT_OPEN = `PermitOpen 127.0.0.1:${SERVED} localhost:${SERVED} 127.0.0.1:${CLOSED}`;

/** Says `hello from NAME` on each connection, then echoes: the greeting is the first byte a caller can wait for. */
const GREETER = `
import socketserver, sys
name, port = sys.argv[1], int(sys.argv[2])
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(("hello from %s\\n" % name).encode())
        while True:
            d = self.request.recv(65536)
            if not d:
                break
            self.request.sendall(d)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("127.0.0.1", port), H).serve_forever()
`;

/** Connects to argv[1] (HOST:PORT or a socket path), prints `greeting|echo of ping`. */
const PROBE =
  "import socket,sys\na=sys.argv[1]\nif a.startswith('/'):\n s=socket.socket(socket.AF_UNIX);s.settimeout(5);s.connect(a)\nelse:\n h,p=a.rsplit(':',1);s=socket.create_connection((h,int(p)),timeout=5)\nf=s.makefile('rwb')\ng=f.readline();f.write(b'ping\\n');f.flush();e=f.readline()\nprint(g.decode().strip()+'|'+e.decode().strip())";

function probeCommand(address: string): string {
  return `python3 -c "${PROBE.replaceAll('"', '\\"')}" ${address}`;
}

/** Starts the greeting server in `host`'s namespace (tracked by the lab) and waits until it answers. */
async function startGreeter(
  lab: Lab,
  host: 'target' | 'client',
  name: string,
  port: number,
): Promise<number> {
  const pid = lab.spawn(host, [realProgramPath('python3'), '-c', GREETER, name, String(port)]);
  const deadline = Date.now() + 10_000;
  while (!(await lab.canReach(host, '127.0.0.1', port))) {
    if (Date.now() > deadline) throw new Error(`greeting server on ${host}:${port} does not answer`);
    await sleep(50);
  }
  return pid;
}

/** A greeting server in this process, on TCP loopback or a socket path. */
function nodeGreeter(name: string, path?: string): Promise<{ server: Server; to: Endpoint }> {
  const server = createServer((sock) => {
    sock.on('error', () => undefined);
    sock.write(`hello from ${name}\n`);
    sock.pipe(sock);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const ready = (): void => {
      const addr = server.address();
      resolve({
        server,
        to: path ? { path } : { host: '127.0.0.1', port: typeof addr === 'object' && addr ? addr.port : 0 },
      });
    };
    if (path) server.listen(path, ready);
    else server.listen(0, '127.0.0.1', ready);
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((r) => (server ? server.close(() => r()) : r()));
}

/** The first line a stream gives, and how long after `since` its first byte came. */
function firstLine(stream: Duplex, since: number): Promise<{ line: string; ms: number }> {
  return new Promise((resolve, reject) => {
    let text = '';
    let ms = -1;
    const onData = (d: Buffer): void => {
      if (ms < 0) ms = performance.now() - since;
      text += d.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl >= 0) {
        stream.off('data', onData);
        stream.pause();
        resolve({ line: text.slice(0, nl), ms });
      }
    };
    stream.on('data', onData);
    stream.once('error', reject);
    stream.once('end', () => reject(new Error(`stream ended after "${text}"`)));
  });
}

/** Open, read the greeting, send a line and read its echo, then close: what a -L connection does. */
async function roundTrip(
  chain: RemoteChain,
  to: Endpoint,
): Promise<{ greeting: string; echo: string; ms: number }> {
  const started = performance.now();
  const stream = await chain.openConnection('target', to, { timeoutMs: 10_000 });
  try {
    const { line: greeting, ms } = await firstLine(stream, started);
    stream.resume();
    stream.write('ping\n');
    const { line: echo } = await firstLine(stream, performance.now());
    return { greeting, echo, ms };
  } finally {
    stream.destroy();
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function rejection(p: Promise<unknown>): Promise<EnvError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EnvError);
  return err as EnvError;
}

async function readUntil(ch: LineChannel, marker: string): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const line = await ch.nextLine(10_000);
    if (line === undefined)
      throw new Error(`channel closed before ${marker}: ${lines.join(' / ')}; ${ch.stderr()}`);
    if (line === marker) return lines;
    lines.push(line);
  }
}

/** Live processes (zombies aside) whose argv contains `text`. */
function processesNaming(text: string): number[] {
  return readdirSync('/proc').flatMap((entry) => {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) return [];
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return [];
      return readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text) ? [Number(entry)] : [];
    } catch {
      return [];
    }
  });
}

/** SSH_AUTH_SOCK values of `host`'s processes that the lab did not inherit from this process. */
async function agentSocketsOf(lab: Lab, host: Hop): Promise<string[]> {
  const own = process.env.SSH_AUTH_SOCK;
  const found: string[] = [];
  for (const pid of await lab.pidsIn(host)) {
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const sock = env.find((v) => v.startsWith('SSH_AUTH_SOCK='))?.slice('SSH_AUTH_SOCK='.length);
      if (sock !== undefined && sock !== own) found.push(sock);
    } catch {
      // Gone while listing.
    }
  }
  return found;
}

/** Unix sockets listening in `host`'s namespace that sshd makes for a forwarded agent. */
async function agentListeners(lab: Lab, host: Hop): Promise<string[]> {
  const r = await lab.exec(host, ['ss', '-xlH']);
  return [...r.stdout.matchAll(/\/tmp\/ssh-[^\s/]+\/agent\.\d+/g)].map((m) => m[0]);
}

/** Five connections to the target's greeting server, each checked; the time from call to first byte is printed. */
async function firstBytes(chain: RemoteChain, label: string): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await roundTrip(chain, { host: '127.0.0.1', port: SERVED });
    expect(r).toMatchObject({ greeting: 'hello from target', echo: 'ping' });
    times.push(r.ms);
  }
  console.log(
    `${label}, call to first byte ${times.map(Math.round).join(', ')} ms (median ${Math.round(median(times))})`,
  );
}

/**
 * One client's way into one lab: chains connected directly, and for OpenSSH
 * an `ssh` on PATH that runs in the client namespace with each test's own
 * XDG_RUNTIME_DIR (nothing may name it once the test is over).
 */
function useChains(client: Client, ref: { readonly lab: Lab }) {
  let relay: Server | undefined;
  const relayed = new Set<Socket>();
  let relayPort = 0;
  let binDir = '';
  let runtimeDir = '';
  const saved = { PATH: process.env.PATH, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR };

  beforeAll(async () => {
    if (client === 'ssh2') {
      // This process cannot reach the lab's network: its relay joins each connection to the bastion's broker bridge.
      const bridge = ref.lab.brokerSocket('bastion');
      relay = createServer((sock) => {
        const up = netConnect(bridge);
        for (const s of [sock, up]) {
          relayed.add(s);
          s.on('error', () => undefined);
          s.once('close', () => {
            relayed.delete(s);
            sock.destroy();
            up.destroy();
          });
        }
        sock.pipe(up).pipe(sock);
      });
      await new Promise<void>((r) => relay?.listen(0, '127.0.0.1', r));
      const addr = relay.address();
      relayPort = typeof addr === 'object' && addr ? addr.port : 0;
    } else {
      binDir = mkdtempSync(join(tmpdir(), 'cf-bin-'));
      const script = join(binDir, 'ssh');
      writeFileSync(script, `#!/bin/sh\nexec ip netns exec ${ref.lab.host('client').ns} /usr/bin/ssh "$@"\n`);
      chmodSync(script, 0o755);
      process.env.PATH = `${binDir}:${saved.PATH ?? ''}`;
    }
  });
  afterAll(async () => {
    for (const s of relayed) s.destroy();
    await closeServer(relay);
    process.env.PATH = saved.PATH;
    if (binDir) rmSync(binDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    if (client !== 'openssh') return;
    runtimeDir = mkdtempSync(join(tmpdir(), 'cf-run-'));
    chmodSync(runtimeDir, 0o700);
    process.env.XDG_RUNTIME_DIR = runtimeDir;
  });
  afterEach(async () => {
    if (client !== 'openssh') return;
    const dir = runtimeDir;
    try {
      const deadline = Date.now() + 5000;
      while (processesNaming(dir).length > 0) {
        if (Date.now() > deadline)
          throw new Error(`processes of the test are left: ${processesNaming(dir).join(' ')}`);
        await sleep(50);
      }
    } finally {
      for (const pid of processesNaming(dir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      if (saved.XDG_RUNTIME_DIR === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = saved.XDG_RUNTIME_DIR;
    }
  });

  const hop = (name: Hop, first: boolean, over: Partial<SshHost>): SshHost => {
    const { lab } = ref;
    const address = lab.host(name).sshAddress;
    const common = { name, identity_files: [lab.keyFile], known_hosts: [lab.knownHostsFile], ...over };
    if (client === 'openssh')
      return sshHost({ ...common, ssh_name: address, address, ssh_client: 'openssh' });
    return first
      ? sshHost({
          ...common,
          ssh_name: address,
          address: '127.0.0.1',
          port: relayPort,
          host_key_alias: address,
        })
      : sshHost({ ...common, ssh_name: address, address });
  };

  return {
    connect(route: Hop[], opts: ConnectOptions = {}, over: Partial<SshHost> = {}): Promise<RemoteChain> {
      const hosts = route.map((h, i) => hop(h, i === 0, over));
      return client === 'openssh'
        ? connectOpenSshChain(hosts, { sshConfigFile: '/dev/null', agent: undefined, ...opts })
        : connectChain(hosts, { agent: undefined, ...opts });
    },
    get runtimeDir(): string {
      return runtimeDir;
    },
  };
}

function labOptions(client: Client, bastions: 1 | 2): LabOptions {
  return {
    bastions,
    ...(client === 'ssh2' ? { broker: ['bastion'] } : {}),
    // One lab with a target that limits what it opens, one without.
    ...(bastions === 1 ? { sshdConfig: { target: [PERMIT_OPEN] } } : {}),
  };
}

describe.skipIf(reason).each(SSH_CLIENTS)('forwarding over the chain (%s)', (client) => {
  describe('through one bastion', () => {
    const ref = useLab(labOptions(client, 1));
    const chains = useChains(client, ref);
    const pids: number[] = [];
    let here: Endpoint = { host: '127.0.0.1', port: 0 };
    let hereServer: Server | undefined;
    let sockServer: Server | undefined;
    let sockDir = '';
    let agent: ChildProcess | undefined;
    let agentSock = '';
    let agentFingerprint = '';

    beforeAll(async () => {
      const { lab } = ref;
      pids.push(await startGreeter(lab, 'target', 'target', SERVED));
      // moshctl joins -R's connections to their destination itself, with either client: here, in this process.
      const g = await nodeGreeter('here');
      hereServer = g.server;
      here = g.to;
      sockDir = mkdtempSync(join(tmpdir(), 'cf-sock-'));
      sockServer = (await nodeGreeter('socket', join(sockDir, 'here.sock'))).server;
      // An agent of this test's own, with a key nothing else has.
      const key = join(sockDir, 'agent_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'forwarded-agent-test', '-f', key]);
      agentFingerprint =
        execFileSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).split(' ')[1] ?? '';
      agentSock = join(sockDir, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
      const deadline = Date.now() + 5000;
      while (!existsSync(agentSock)) {
        if (Date.now() > deadline) throw new Error('ssh-agent did not start');
        await sleep(20);
      }
      execFileSync('ssh-add', ['-q', key], {
        env: { ...process.env, SSH_AUTH_SOCK: agentSock },
        stdio: 'ignore',
      });
    });
    afterAll(async () => {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
      if (agent?.pid !== undefined && agent.exitCode === null) {
        const exited = new Promise((r) => agent?.once('exit', r));
        agent.kill('SIGTERM');
        await exited;
      }
      await closeServer(hereServer);
      await closeServer(sockServer);
      if (sockDir) rmSync(sockDir, { recursive: true, force: true });
    });

    it('opens connections from the target to its own loopback, by address and by name, cheaply', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      try {
        await firstBytes(chain, `${client}: openConnection through 1 bastion`);
        // The name is resolved on the target.
        expect((await roundTrip(chain, { host: 'localhost', port: SERVED })).greeting).toBe(
          'hello from target',
        );
        // Many at once, each its own connection.
        const all = await Promise.all(
          Array.from({ length: 8 }, () => roundTrip(chain, { host: '127.0.0.1', port: SERVED })),
        );
        expect(all.every((r) => r.greeting === 'hello from target' && r.echo === 'ping')).toBe(true);
      } finally {
        await chain.close();
      }
    });

    it('rejects a refused port and a PermitOpen refusal with the reason, naming host and destination', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      try {
        const refused = await rejection(
          chain.openConnection('target', { host: '127.0.0.1', port: CLOSED }, { timeoutMs: 10_000 }),
        );
        expect(refused.message).toBe(`target could not connect to 127.0.0.1:${CLOSED}: connection refused`);
        expect(refused.where).toEqual({ host: 'target', step: 'forward' });
        const prohibited = await rejection(
          chain.openConnection('target', { host: '127.0.0.1', port: FORBIDDEN }, { timeoutMs: 10_000 }),
        );
        expect(prohibited.message).toMatch(
          new RegExp(
            `^target refused to open a connection to 127\\.0\\.0\\.1:${FORBIDDEN}: administratively prohibited \\(AllowTcpForwarding or PermitOpen`,
          ),
        );
        // Refusals among good ones, all at once: each gets its own answer.
        const mixed = await Promise.allSettled([
          ...Array.from({ length: 3 }, () =>
            chain.openConnection('target', { host: '127.0.0.1', port: CLOSED }, { timeoutMs: 10_000 }),
          ),
          ...Array.from({ length: 3 }, () => roundTrip(chain, { host: '127.0.0.1', port: SERVED })),
        ]);
        for (const r of mixed.slice(0, 3)) {
          expect(r.status).toBe('rejected');
          if (r.status === 'rejected') expect((r.reason as Error).message).toMatch(/connection refused/);
        }
        for (const r of mixed.slice(3)) expect(r.status).toBe('fulfilled');
        // The chain is as good as before.
        expect((await roundTrip(chain, { host: '127.0.0.1', port: SERVED })).greeting).toBe(
          'hello from target',
        );
      } finally {
        await chain.close();
      }
    });

    it('refuses a Unix socket on the target: its PermitOpen leaves paths out (ssh2), -W takes none (OpenSSH)', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      try {
        const to = { path: join(sockDir, 'here.sock') };
        const err = await rejection(chain.openConnection('target', to, { timeoutMs: 10_000 }));
        expect(err.where).toEqual({ host: 'target', step: 'forward' });
        if (client === 'ssh2') {
          // sshd gives no reason; the socket is there (it opens through the lab without PermitOpen, below).
          expect(err.message).toMatch(
            /^target could not open \/tmp\/.*here\.sock: "open failed", .*PermitOpen/,
          );
        } else {
          expect(err.message).toMatch(/ssh -W takes only HOST:PORT, not a socket path/);
          expect(err.hint).toMatch(/ssh_client: ssh2/);
        }
      } finally {
        await chain.close();
      }
    });

    it('listens on the target for a remote forward, port 0 reporting the chosen port, forwards told apart', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      const seen = { connections: 0, closed: [] as boolean[], errors: [] as string[] };
      const events = {
        onConnection: () => seen.connections++,
        onClosed: (broken: boolean) => seen.closed.push(broken),
        onError: (why: string) => seen.errors.push(why),
      };
      try {
        const chosen = await chain.remoteForward('target', { host: 'localhost', port: 0 }, here, events);
        expect(chosen.port).toBeGreaterThan(1023);
        const bySocket = await chain.remoteForward(
          'target',
          { host: '127.0.0.1', port: 0 },
          { path: join(sockDir, 'here.sock') },
        );
        expect(bySocket.port).toBeGreaterThan(1023);
        expect(bySocket.port).not.toBe(chosen.port);
        const fixed = await chain.remoteForward('target', { host: '127.0.0.1', port: 7100 }, here);
        expect(fixed).toEqual({ port: 7100 });
        const remoteSock = join(sockDir, `remote-${client}.sock`);
        expect(await chain.remoteForward('target', { path: remoteSock }, here)).toEqual({});

        const probe = async (address: string): Promise<string> => {
          const r = await chain.exec('target', probeCommand(address));
          expect(r.code, r.stderr).toBe(0);
          return r.stdout.trim();
        };
        expect(await probe(`127.0.0.1:${chosen.port}`)).toBe('hello from here|ping');
        expect(await probe(`127.0.0.1:${bySocket.port}`)).toBe('hello from socket|ping');
        expect(await probe('127.0.0.1:7100')).toBe('hello from here|ping');
        expect(await probe(remoteSock)).toBe('hello from here|ping');
        // Both clients: the connections come back to this process, which joins and counts them.
        await sleep(100);
        expect(seen.connections).toBe(1);
        expect(seen.closed).toEqual([false]);
        expect(seen.errors).toEqual([]);
      } finally {
        await chain.close();
      }
    });

    it('rejects a remote forward the target cannot listen for, naming host and spec', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      try {
        // The greeting server has that port.
        const err = await rejection(chain.remoteForward('target', { host: '127.0.0.1', port: SERVED }, here));
        const spec = `127.0.0.1:${SERVED}:${'path' in here ? here.path : `${here.host}:${here.port}`}`;
        expect(err.message).toMatch(
          new RegExp(`^target refused to listen for -R ${spec.replaceAll('.', '\\.')}`),
        );
        expect(err.hint).toMatch(/may be in use on target.*AllowTcpForwarding/);
        expect(err.where).toEqual({ host: 'target', step: 'forward' });
        // And the chain goes on.
        expect(
          (await chain.remoteForward('target', { host: 'localhost', port: 0 }, here)).port,
        ).toBeGreaterThan(0);
      } finally {
        await chain.close();
      }
    });

    it('reports a connection that cannot be joined here, and refuses it at the far end', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      const errors: string[] = [];
      try {
        const nobody = await nodeGreeter('gone');
        await closeServer(nobody.server);
        const { port } = await chain.remoteForward('target', { host: 'localhost', port: 0 }, nobody.to, {
          onError: (why) => errors.push(why),
        });
        const r = await chain.exec('target', probeCommand(`127.0.0.1:${port ?? 0}`));
        expect(r.stdout.trim() || r.stderr).not.toMatch(/hello/);
        expect(errors).toEqual([
          `connect to 127.0.0.1:${'port' in nobody.to ? nobody.to.port : 0} on this machine: ECONNREFUSED`,
        ]);
      } finally {
        await chain.close();
      }
    });

    it('reports a connection the chain drops under as broken', async () => {
      const chain = await chains.connect(['bastion', 'target']);
      const closed: boolean[] = [];
      let opened = 0;
      const { port } = await chain.remoteForward('target', { host: 'localhost', port: 0 }, here, {
        onConnection: () => opened++,
        onClosed: (broken) => closed.push(broken),
      });
      // A client on the target that stays connected.
      const stay = `python3 -c "import socket;s=socket.create_connection(('127.0.0.1',${port ?? 0}));print(s.recv(100).decode().strip(),flush=True);import time;time.sleep(30)"`;
      const ch = await chain.openChannel('target', stay, { stdin: '' });
      expect(await ch.nextLine(10_000)).toBe('hello from here');
      expect(opened).toBe(1);
      chain.destroy();
      const deadline = Date.now() + 5000;
      while (closed.length === 0 && Date.now() < deadline) await sleep(20);
      expect(closed).toEqual([true]);
    });

    it('forwards the agent to the target only: the bastion never gets a socket or SSH_AUTH_SOCK', async () => {
      const { lab } = ref;
      const chain = await chains.connect(
        ['bastion', 'target'],
        { agent: agentSock, agentFor: 'target' },
        { identity_agent: undefined },
      );
      let ch: LineChannel | undefined;
      try {
        expect((await chain.exec('target', 'echo "[$SSH_AUTH_SOCK]"')).stdout).toBe('[]\n');
        ch = await chain.openChannel(
          'target',
          'echo "sock=$SSH_AUTH_SOCK"; ssh-add -l; echo END; cat >/dev/null',
          {
            stdin: '',
            forwardAgent: true,
          },
        );
        const lines = await readUntil(ch, 'END');
        expect(lines.join('\n')).toContain(agentFingerprint);
        const sock = /^sock=(\/tmp\/ssh-[^/]+\/agent\.\d+)$/m.exec(lines.join('\n'))?.[1];
        expect(sock, lines.join(' / ')).toBeDefined();

        // The checks can see an agent: the target has one now.
        expect(await agentListeners(lab, 'target')).toContain(sock);
        expect(await agentSocketsOf(lab, 'target')).toContain(sock);
        // The bastion has none, in any process or socket, and cannot be asked for one.
        expect(await agentListeners(lab, 'bastion')).toEqual([]);
        expect(await agentSocketsOf(lab, 'bastion')).toEqual([]);
        expect((await chain.exec('bastion', 'echo "[$SSH_AUTH_SOCK]"')).stdout).toBe('[]\n');
        await expect(chain.openChannel('bastion', 'true', { stdin: '', forwardAgent: true })).rejects.toThrow(
          /^bug: a channel on bastion asked for the ssh-agent, but only target of this chain may get it/,
        );
        if (client === 'openssh') {
          // A mux client that asks for the agent through the bastion's master gets none: that master says ForwardAgent no.
          const dir = readdirSync(chains.runtimeDir).find((f) => f.startsWith('moshctl-'));
          const argv = execArgv(
            join(chains.runtimeDir, dir ?? '', '0'),
            lab.host('bastion').sshAddress,
            'echo "[$SSH_AUTH_SOCK]"',
            {
              forwardAgent: true,
            },
          );
          const out = execFileSync('ssh', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
          expect(out).toBe('[]\n');
          expect(await agentListeners(lab, 'bastion')).toEqual([]);
        }
        // sshd keeps one agent socket per connection: later sessions on the target see it too.
        expect((await chain.exec('target', 'echo "[$SSH_AUTH_SOCK]"')).stdout).toBe(`[${sock ?? ''}]\n`);
      } finally {
        ch?.end();
        await chain.close();
      }
      // Gone with the connection.
      expect(await agentListeners(lab, 'target')).toEqual([]);
    });

    it('refuses the agent to a channel when no host may have it, or there is no agent', async () => {
      const none = await chains.connect(
        ['bastion', 'target'],
        { agent: agentSock },
        { identity_agent: undefined },
      );
      try {
        await expect(none.openChannel('target', 'true', { stdin: '', forwardAgent: true })).rejects.toThrow(
          /^bug: .*but no host of this chain may get it/,
        );
      } finally {
        await none.close();
      }
      const noAgent = await chains.connect(
        ['bastion', 'target'],
        { agent: undefined, agentFor: 'target' },
        { identity_agent: undefined },
      );
      try {
        const err = await rejection(noAgent.openChannel('target', 'true', { stdin: '', forwardAgent: true }));
        expect(err.message).toBe(
          'cannot forward the ssh-agent to target: no agent was given and SSH_AUTH_SOCK is not set',
        );
      } finally {
        await noAgent.close();
      }
    });
  });

  describe('through two bastions', () => {
    const ref = useLab(labOptions(client, 2));
    const chains = useChains(client, ref);
    const pids: number[] = [];
    let here: Endpoint = { host: '127.0.0.1', port: 0 };
    let hereServer: Server | undefined;
    let sockServer: Server | undefined;
    let sockDir = '';

    beforeAll(async () => {
      pids.push(await startGreeter(ref.lab, 'target', 'target', SERVED));
      sockDir = mkdtempSync(join(tmpdir(), 'cf-sock-'));
      sockServer = (await nodeGreeter('socket', join(sockDir, 'here.sock'))).server;
      const g = await nodeGreeter('here');
      hereServer = g.server;
      here = g.to;
    });
    afterAll(async () => {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // Already gone.
        }
      }
      await closeServer(hereServer);
      await closeServer(sockServer);
      if (sockDir) rmSync(sockDir, { recursive: true, force: true });
    });

    it.runIf(client === 'ssh2')(
      'opens a Unix socket on the target (direct-streamlocal), and says why a missing one fails',
      async () => {
        const chain = await chains.connect(['bastion', 'bastion2', 'target']);
        try {
          expect(await roundTrip(chain, { path: join(sockDir, 'here.sock') })).toMatchObject({
            greeting: 'hello from socket',
            echo: 'ping',
          });
          const missing = join(sockDir, 'missing.sock');
          const err = await rejection(
            chain.openConnection('target', { path: missing }, { timeoutMs: 10_000 }),
          );
          // sshd gives no reason for a socket path: the same words as for one PermitOpen leaves out.
          expect(err.message).toMatch(
            new RegExp(
              `^target could not open ${missing}: "open failed", all sshd says when the socket does not exist`,
            ),
          );
        } finally {
          await chain.close();
        }
      },
    );

    it('opens a connection from the target and carries a remote forward back, across both', async () => {
      const chain = await chains.connect(['bastion', 'bastion2', 'target']);
      try {
        await firstBytes(chain, `${client}: openConnection through 2 bastions`);
        const { port } = await chain.remoteForward('target', { host: 'localhost', port: 0 }, here);
        const r = await chain.exec('target', probeCommand(`127.0.0.1:${port ?? 0}`));
        expect(r.stdout.trim(), r.stderr).toBe('hello from here|ping');
      } finally {
        await chain.close();
      }
    });
  });
});

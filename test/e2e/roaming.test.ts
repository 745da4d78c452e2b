// What moshctl's relays are for: a session through one or two bastions that
// survives the client changing its IP and a 15 s outage (after which
// mosh-client has hopped to a new source port), ignores spoofed datagrams from
// a third host, never shows the session key to a bastion, and leaves nothing
// behind when moshctl and mosh-client die without tearing down.
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { HostName, Lab } from '../../src/lab/index.js';
import {
  bothWays,
  exitSession,
  killUpAndClient,
  outage,
  restoreNetwork,
  records,
  sessionProcesses,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForPrompt,
  type UpSession,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, programFiles, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

/** The recovery a person would accept after a roam or an outage (the facts measured ~2 s). */
const RECOVERY_MS = 20_000;
const OUTAGE_MS = 15_000;

interface StateRecord {
  pid: number;
  server?: { host: string; pid: number; port: number };
  relays: { host: string; pid: number; port: number; runtime: string; restarts?: number }[];
}

function recordFiles(s: UpSession): string[] {
  return records(s).map((f) => join(s.stateHome, 'moshctl', 'sessions', f));
}

function theRecord(s: UpSession): StateRecord {
  const files = recordFiles(s);
  expect(files).toHaveLength(1);
  return JSON.parse(readFileSync(files[0] ?? '', 'utf8')) as StateRecord;
}

/** The relay processes (python3 or perl) on a host, without the /bin/sh that launched each and holds its channel. */
function relaysOn(running: string[], host: HostName): string[] {
  return running.filter(
    (p) =>
      p.startsWith(`${host} `) &&
      p.includes('--idle-timeout') &&
      !p.startsWith(`${host} ${p.split(' ')[1]} /bin/sh `),
  );
}

/** pid of the one mosh-client in the client namespace. */
async function moshClientPid(lab: Lab): Promise<number> {
  const clients = (await sessionProcesses(lab)).filter((p) => /^client \d+ mosh-client /.test(p));
  expect(clients).toHaveLength(1);
  return Number(clients[0]?.split(' ')[1]);
}

function readOr(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch {
    return Buffer.alloc(0); // the process ended meanwhile, or a socket/fifo
  }
}

/** "/proc/PID/cmdline" and "/proc/PID/environ" of every process in a host's namespace that holds `needle`. */
async function processesHolding(lab: Lab, host: HostName, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const pid of await lab.pidsIn(host)) {
    for (const part of ['cmdline', 'environ']) {
      if (readOr(`/proc/${pid}/${part}`).includes(needle)) hits.push(`${host} /proc/${pid}/${part}`);
    }
  }
  return hits;
}

/** Files below `dir` whose bytes contain `needle`. */
function filesHolding(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' })) {
    const path = join(dir, name);
    let file = false;
    try {
      file = statSync(path).isFile();
    } catch {
      continue;
    }
    if (file && readOr(path).includes(needle)) hits.push(path);
  }
  return hits;
}

/**
 * The session key, read from mosh-client's exec-time environment block:
 * mosh-client unsets MOSH_KEY after reading it, but unsetenv only moves
 * pointers, so /proc/PID/environ still shows the block as it was at exec.
 */
async function sessionKey(lab: Lab): Promise<string> {
  const pid = await moshClientPid(lab);
  const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
  const keys = env.filter((e) => e.startsWith('MOSH_KEY=')).map((e) => e.slice('MOSH_KEY='.length));
  expect(keys).toHaveLength(1);
  const key = keys[0] ?? '';
  expect(key).toMatch(/^[A-Za-z0-9/+]{22}$/);
  return key;
}

/**
 * Where the key must not be: any process on a bastion (argv and environment),
 * the bastion's files in the lab dir (sshd config and log), the state records
 * and moshctl's stderr. A positive control first: the same process scan finds
 * the key on the client (in mosh-client's environ), so an empty result on a
 * bastion means "absent", not "the scan cannot see it".
 *
 * This fails if the key ever reached a bastion the usual ways: in the relay's
 * argv (`python3 - … KEY` shows in its /proc/PID/cmdline), inline in its
 * command (`MOSH_KEY=… python3 …` or `env …` shows in its environ, and so do
 * any of sshd's session children it passes through), logged by sshd (files),
 * written to the record, or printed by moshctl.
 */
async function expectKeyNowhereOnBastions(lab: Lab, s: UpSession, bastions: HostName[]): Promise<void> {
  const key = await sessionKey(lab);
  expect(await processesHolding(lab, 'client', key)).not.toEqual([]);
  for (const b of bastions) {
    expect(await processesHolding(lab, b, key)).toEqual([]);
    expect(filesHolding(join(lab.dir, b), key)).toEqual([]);
  }
  expect(filesHolding(s.stateHome, key)).toEqual([]);
  expect(recordFiles(s)).toHaveLength(1);
  expect(stderrOf(s)).not.toContain(key);
}

/** From the outsider: `sockets` source ports each send `rounds` random datagrams to host:port; counts replies. */
const FLOOD_PY = String.raw`
import os, random, selectors, socket, sys, time
host, port, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sel = selectors.DefaultSelector()
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 0))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    socks.append(s)
sent = replies = 0
def drain(timeout):
    global replies
    for key, _ in sel.select(timeout):
        while True:
            try:
                key.fileobj.recv(65535)
            except OSError:
                break
            replies += 1
for _ in range(rounds):
    for s in socks:
        # nonce direction bit 0 (client to server), so mosh-server tries to decrypt it
        data = bytes([random.randrange(128)]) + os.urandom(random.randint(23, 300))
        try:
            s.sendto(data, (host, port))
            sent += 1
        except OSError:
            pass
    drain(0.05)
    time.sleep(0.1)
end = time.monotonic() + 3  # replies may lag: listen a while longer
while time.monotonic() < end:
    drain(0.2)
ports = len(set(s.getsockname()[1] for s in socks))
print("sent %d replies %d ports %d" % (sent, replies, ports))
`;

async function flood(
  lab: Lab,
  port: number,
  sockets: number,
  rounds: number,
): Promise<{ sent: number; replies: number; ports: number }> {
  const r = await lab.exec(
    'outsider',
    ['python3', '-c', FLOOD_PY, lab.hosts.bastion.sshAddress, String(port), String(sockets), String(rounds)],
    { timeoutMs: 60_000 },
  );
  const m = /^sent (\d+) replies (\d+) ports (\d+)$/m.exec(r.stdout);
  if (r.code !== 0 || !m) throw new Error(`flood failed (${r.code}): ${r.stdout}${r.stderr}`);
  return { sent: Number(m[1]), replies: Number(m[2]), ports: Number(m[3]) };
}

/** Sockets a process holds (a socket fd reads as "socket:[inode]"). */
function socketCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;
}

/** Local UDP ports of mosh-client's sockets (it opens a new one per port hop, keeping old ones 60 s). */
async function clientPorts(lab: Lab): Promise<string[]> {
  const pid = await moshClientPid(lab);
  const r = await lab.exec('client', ['ss', '-uanpH']);
  return r.stdout
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`))
    .map((l) => /\S+:(\d+)\s+\S+\s*users:/.exec(l)?.[1] ?? l);
}

/** Waits until `pred` holds; returns the ms it took, or throws after timeoutMs. */
async function until(what: string, pred: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await pred()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what} within ${timeoutMs} ms`);
    await sleep(250);
  }
}

describe.skipIf(reason).each(SSH_CLIENTS)('roaming through one bastion (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  const sessions = useSessions(ctx, restoreNetwork(ctx));

  async function up(args: string[] = ['up', 'target'], config?: string): Promise<UpSession> {
    const s = await sessions.start(args, config ? { config } : {});
    await waitForPrompt(s);
    await typeAndCheck(ctx.lab, s);
    return s;
  }

  it('survives the client changing its IP address', async () => {
    const { lab } = ctx;
    const s = await up();
    const before = lab.hosts.client.addresses[0];
    const after = await lab.roam();
    expect(after).not.toBe(before);
    const r = await lab.exec('client', ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    expect(r.stdout).toContain(`${after}/24`);
    expect(r.stdout).not.toContain(`${before}/`);
    const ms = await bothWays(lab, s, RECOVERY_MS);
    console.log(
      `one bastion: typed command ran on the target and its output came back ${ms} ms after roaming ${before} -> ${after}`,
    );
    const exitStarted = Date.now();
    expect(await exitSession(s)).toBe(0);
    console.log(`one bastion: exit and teardown after the roam took ${Date.now() - exitStarted} ms`);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
    // The sshd sessions of the connections the roam killed were ended too: only the listeners remain.
    expect(await settleNoHopProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('heals a relay killed mid-session: typing goes on, the relay is back on its port, status shows the restart', async () => {
    const { lab } = ctx;
    const s = await up();
    const before = theRecord(s).relays[0];
    if (!before) throw new Error('no relay recorded');
    await lab.exec('bastion', ['kill', '-KILL', String(before.pid)]);
    const ms = await bothWays(lab, s, RECOVERY_MS);
    const after = theRecord(s).relays[0];
    expect(after?.pid).not.toBe(before.pid);
    expect(after?.port).toBe(before.port);
    expect(after?.restarts).toBe(1);
    console.log(`relay killed: typed command came back ${ms} ms later through relay pid ${after?.pid}`);
    const status = await lab.exec('client', [
      'env',
      ...Object.entries(s.env).map(([k, v]) => `${k}=${v}`),
      ...lab.moshctlCommand(['status']).slice(4),
    ]);
    expect(status.stdout).toContain(`(${after?.runtime}, pid ${after?.pid}, restarted 1×): alive`);
    expect(await exitSession(s)).toBe(0);
    expect(stderrOf(s)).toContain(`relay on bastion restarted (pid ${after?.pid}`);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('survives a 15 s outage, after which mosh-client comes back from a new source port', async () => {
    const { lab } = ctx;
    const s = await up();
    const portsBefore = await clientPorts(lab);
    expect(portsBefore).toHaveLength(1);
    await outage(lab, OUTAGE_MS);
    const ms = await bothWays(lab, s, RECOVERY_MS);
    // mosh-client did hop: the relay had to serve a source address it had not seen.
    const portsAfter = await clientPorts(lab);
    console.log(`mosh-client UDP ports before ${portsBefore.join(',')}, after ${portsAfter.join(',')}`);
    expect(portsAfter.filter((p) => !portsBefore.includes(p)).length).toBeGreaterThan(0);
    console.log(
      `one bastion: typed command ran on the target and its output came back ${ms} ms after a ${OUTAGE_MS} ms outage`,
    );
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('gives a spoofing outsider no replies, caps its table, and the session carries on', async () => {
    const { lab } = ctx;
    const s = await up();
    const rec = theRecord(s);
    const relay = rec.relays[0];
    expect(relay?.host).toBe('bastion');
    if (!relay) return;
    // 500 source ports x 4 datagrams, while the user keeps typing.
    const flooding = flood(lab, relay.port, 500, 4);
    const during = await bothWays(lab, s, RECOVERY_MS);
    const result = await flooding;
    console.log(`spoof flood: ${JSON.stringify(result)}; typed command took ${during} ms during it`);
    expect(result.ports).toBe(500);
    expect(result.sent).toBe(2000);
    expect(result.replies).toBe(0);
    // The datagrams did reach the relay (it made upstream sockets for them), and
    // its table stayed within --max-clients (64 entries + the listening socket).
    const sockets = socketCount(relay.pid);
    console.log(`relay holds ${sockets} sockets after the flood`);
    expect(sockets).toBeGreaterThan(10);
    expect(sockets).toBeLessThanOrEqual(65);
    // The client, answered by the server, was never evicted in favour of spoofers.
    const after = await bothWays(lab, s, 5_000);
    console.log(`after the flood the typed command took ${after} ms`);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('never shows the session key to the bastion', async () => {
    const { lab } = ctx;
    const s = await up();
    await expectKeyNowhereOnBastions(lab, s, ['bastion']);
    expect(await exitSession(s)).toBe(0);
    expect(stderrOf(s)).not.toMatch(/MOSH_KEY|MOSH CONNECT/);
  });

  it('stays usable with 20 % packet loss on the client link', async () => {
    const { lab } = ctx;
    const s = await up();
    await lab.dropShare('client', 20);
    try {
      for (let i = 0; i < 3; i++) {
        const ms = await bothWays(lab, s, RECOVERY_MS);
        console.log(`20 % loss: typed command ${i + 1} ran on the target in ${ms} ms`);
      }
    } finally {
      await lab.clearDrops();
    }
    expect(await exitSession(s)).toBe(0);
  });

  it('relay and mosh-server exit on their own when moshctl and mosh-client are killed', async () => {
    const { lab } = ctx;
    const timeout = 8;
    const config = join(lab.dir, 'short-timeout.yaml');
    const text = readFileSync(lab.configFile, 'utf8');
    expect(text).toMatch(/^ {2}network_timeout: \d+$/m);
    writeFileSync(config, text.replace(/^ {2}network_timeout: \d+$/m, `  network_timeout: ${timeout}`));
    const s = await up(['up', 'target'], config);
    const rec = theRecord(s);
    const running = await sessionProcesses(lab);
    expect(relaysOn(running, 'bastion').filter((p) => p.includes(`--idle-timeout ${timeout}`))).toHaveLength(
      1,
    );
    expect(running.filter((p) => /^target \d+ mosh-server /.test(p))).toHaveLength(1);

    // Nothing tears down: moshctl and mosh-client die at once (SIGKILL, so
    // mosh-client cannot send the server a shutdown either).
    const client = await moshClientPid(lab);
    killUpAndClient(rec.pid, client);
    const killed = Date.now();
    const relayPid = rec.relays[0]?.pid ?? 0;
    const serverPid = rec.server?.pid ?? 0;
    const alive = async (host: HostName, pid: number): Promise<boolean> =>
      (await sessionProcesses(lab)).some((p) => p.startsWith(`${host} ${pid} `));
    // Looked at first: nothing tore them down. (After waiting for mosh-client, on a loaded
    // machine, mosh-server's own timeout may already have run out.)
    expect(await alive('target', serverPid)).toBe(true);
    expect(await alive('bastion', relayPid)).toBe(true);
    await until('mosh-client did not die', async () => !(await alive('client', client)), 5_000);
    // mosh-server exits `timeout` s after the client's last packet; until then it
    // keeps sending (every 3 s) and the relay forwards its replies, so the relay
    // goes at most `timeout` s after the server.
    const limit = (2 * timeout + 10) * 1000;
    await until('mosh-server did not exit', async () => !(await alive('target', serverPid)), limit);
    const serverMs = Date.now() - killed;
    await until('the relay did not exit', async () => !(await alive('bastion', relayPid)), limit);
    const relayMs = Date.now() - killed;
    console.log(
      `after the kill: mosh-server gone in ${serverMs} ms, relay in ${relayMs} ms (timeout ${timeout} s)`,
    );
    expect(serverMs).toBeLessThanOrEqual((timeout + 5) * 1000);
    expect(relayMs).toBeLessThanOrEqual((2 * timeout + 5) * 1000);
    expect(await settleNoSessionProcesses(lab, 1000)).toEqual([]);
    // The record of a moshctl killed by SIGKILL is left for `moshctl down`; remove it here.
    for (const f of recordFiles(s)) rmSync(f);
  });
});

describe.skipIf(reason).each(SSH_CLIENTS)('roaming through two bastions (%s)', (sshClient) => {
  const ctx = useLab({ bastions: 2, sshClient });
  const sessions = useSessions(ctx, restoreNetwork(ctx));

  it('works, survives a roam and a 15 s outage, and exit leaves nothing on any host', async () => {
    const { lab } = ctx;
    expect(readFileSync(lab.configFile, 'utf8')).toMatch(/via: \[bastion, bastion2\]/);
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    await typeAndCheck(lab, s);
    const running = await sessionProcesses(lab);
    expect(relaysOn(running, 'bastion')).toHaveLength(1);
    expect(relaysOn(running, 'bastion2')).toHaveLength(1);
    expect(theRecord(s).relays.map((r) => r.host)).toEqual(['bastion', 'bastion2']);
    await expectKeyNowhereOnBastions(lab, s, ['bastion', 'bastion2']);

    const before = lab.hosts.client.addresses[0];
    const after = await lab.roam();
    const roamMs = await bothWays(lab, s, RECOVERY_MS);
    console.log(
      `two bastions: typed command ran on the target and its output came back ${roamMs} ms after roaming ${before} -> ${after}`,
    );

    await outage(lab, OUTAGE_MS);
    const outageMs = await bothWays(lab, s, RECOVERY_MS);
    console.log(
      `two bastions: typed command ran on the target and its output came back ${outageMs} ms after a ${OUTAGE_MS} ms outage`,
    );

    expect(await exitSession(s)).toBe(0);
    // sessionProcesses covers client, bastion, bastion2 and target.
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s), stderrOf(s)).toEqual([]);
    expect(stderrOf(s)).toMatch(/session target-\S+ ended; stopped 3 process\(es\)/);
    expect(await settleNoHopProcesses(lab), stderrOf(s)).toEqual([]);
  });
});

describe.skipIf(reason)('roaming through a bastion with neither python3 nor socat (the perl relay)', () => {
  const ctx = useLab({ hide: { bastion: programFiles(['python3', 'socat']) } });
  const sessions = useSessions(ctx, restoreNetwork(ctx));

  it('starts the perl relay in the same exec, and survives a roam and a 15 s outage', async () => {
    const { lab } = ctx;
    // The premise, seen from an ssh session there: python3 and socat exist but do not run, perl does.
    const probe = await lab.exec(
      'client',
      lab.sshArgv('bastion', [
        'command -v python3 >/dev/null && echo py-found; python3 -c 1 2>/dev/null; echo py=$?; socat -V >/dev/null 2>&1; echo socat=$?; perl -e 1; echo perl=$?',
      ]),
    );
    expect(probe.stdout).toContain('py-found');
    expect(probe.stdout).toMatch(/^py=12[67]$/m);
    expect(probe.stdout).toMatch(/^socat=12[67]$/m);
    expect(probe.stdout).toMatch(/^perl=0$/m);
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    await typeAndCheck(lab, s);
    expect(theRecord(s).relays.map((r) => r.runtime)).toEqual(['perl']);
    await lab.roam();
    const roamMs = await bothWays(lab, s, RECOVERY_MS);
    const portsBefore = await clientPorts(lab);
    await outage(lab, OUTAGE_MS);
    const outageMs = await bothWays(lab, s, RECOVERY_MS);
    const portsAfter = await clientPorts(lab);
    expect(portsAfter.filter((p) => !portsBefore.includes(p)).length).toBeGreaterThan(0);
    console.log(`perl relay: back ${roamMs} ms after a roam, ${outageMs} ms after a ${OUTAGE_MS} ms outage`);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });
});

// Many sessions through one bastion for `npm run bench`: `moshctl up target
// --no-connect` COUNT times, each proven usable at once by a real mosh-client
// in a terminal (script(1)); then the bastion's share of every session
// (relay RSS and idle CPU), `moshctl status`, a second proof through every
// session while all of them are open, `moshctl down --all`, and a check that
// nothing is left on any host.
//
// The session key goes from moshctl's stdout (kept in memory only) to
// mosh-client's environment, never to an argv, a file or a message: errors
// carry moshctl's stderr and exit code, never its stdout.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, cmdline, CLK_TCK, cpuTicks, exeOf, isRunning, parentOf, rssKb } from './procfs.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HAND_OVER = /^MOSH_KEY=([A-Za-z0-9/+]{22}) mosh-client (\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5})$/m;
/** What a session's process looks like on a host (mosh-server, a relay of any runtime). */
const SESSION_PROCESS = /mosh-server|mosh-client|--idle-timeout|socat|moshctl-relay|\bnc\b/;
// Terminal escape sequences (CSI, charset selection, keypad modes), written without a control character.
const ESCAPES = new RegExp(`${String.fromCharCode(27)}(?:\\[[0-9;?]*[A-Za-z]|[()][0-9A-B]|[=>])`, 'g');
const redact = (text) => text.replace(/MOSH_KEY=\S+/g, 'MOSH_KEY=<key>').replace(/^key \S+$/gm, 'key <key>');

/** Runs a command to completion, collecting its output (async: the open clients' pipes keep draining). */
function run(argv, env, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Number(process.hrtime.bigint() - t) / 1e6 });
    });
  });
}

/** The remote command of session i: a first line to see, then a calculator that only the target can answer. */
const remote = (i) => `echo READY-${i}; while read l; do echo "ANSWER-$((l * 7))"; done`;

/** mosh-client in a terminal of its own (script(1)), the key in its environment only. */
class Client {
  constructor(lab, i, address, port, key) {
    this.i = i;
    this.out = '';
    this.started = Date.now();
    // address and port were matched as digits and dots by HAND_OVER: safe in a shell line.
    this.child = spawn(
      'script',
      [
        '-qfec',
        `stty rows 24 cols 80; exec ip netns exec ${lab.hosts.client.ns} mosh-client ${address} ${port}`,
        '/dev/null',
      ],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: { ...process.env, LANG: 'C.UTF-8', TERM: 'xterm', MOSH_KEY: key },
      },
    );
    lab.track(this.child.pid);
    this.child.on('error', () => undefined);
    this.child.stdin.on('error', () => undefined);
    // Only the tail is kept: enough to find the last answer.
    const keep = (d) => (this.out = (this.out + d).slice(-8192));
    this.child.stdout.on('data', keep);
    this.child.stderr.on('data', keep);
    this.exited = new Promise((r) => this.child.on('exit', r));
  }

  /** pids of script's children (the shell exec'd into mosh-client); tracked so the lab stops them too. */
  programs() {
    return childrenOf(this.child.pid);
  }

  async waitFor(text, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    // mosh draws a new line on a blank row in one run of characters; escapes are dropped to be safe.
    const plain = () => this.out.replace(ESCAPES, '');
    while (!plain().includes(text)) {
      if (Date.now() > deadline)
        throw new Error(`session ${this.i}: "${text}" did not appear within ${timeoutMs} ms`);
      await sleep(25);
    }
    return Date.now();
  }

  /** Types a number; the target's answer (7 times it) proves the way there and back. */
  async roundTrip(n, timeoutMs) {
    const t = Date.now();
    this.child.stdin.write(`${n}\r`);
    await this.waitFor(`ANSWER-${n * 7}`, timeoutMs);
    return Date.now() - t;
  }

  /** SIGTERM to mosh-client (it restores the terminal and exits), then to script; SIGKILL after graceMs. */
  async stop(graceMs = 3000) {
    const pids = [...this.programs(), this.child.pid];
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
    const deadline = Date.now() + graceMs;
    while (pids.some(isRunning) && Date.now() < deadline) await sleep(50);
    for (const pid of pids.filter(isRunning)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone between the check and the kill
      }
    }
    await Promise.race([this.exited, sleep(3000)]);
  }
}

function readRecords(state) {
  const dir = join(state, 'moshctl', 'sessions');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')));
}

/** Session processes (mosh-server, relays, mosh-client) on the lab's hosts, as "host pid cmdline". */
async function sessionProcesses(lab) {
  const found = [];
  for (const host of Object.keys(lab.hosts)) {
    for (const pid of await lab.pidsIn(host)) {
      const cmd = cmdline(pid);
      if (!isRunning(pid) || cmd.startsWith('sshd:') || cmd.includes('/sshd ')) continue;
      if (SESSION_PROCESS.test(cmd)) found.push(`${host} ${pid} ${cmd}`);
    }
  }
  return found;
}

/**
 * Opens `count` sessions to `target` through the bastion (config: a moshproxy.yaml
 * whose port ranges have room for them) and measures them; see the top of this file.
 */
export async function manySessions(lab, o) {
  const state = mkdtempSync(join(tmpdir(), 'moshctl-bench-sessions-'));
  const env = { ...process.env, XDG_STATE_HOME: state };
  const moshctl = (args) => lab.clientCommand([process.execPath, o.moshctl, '-f', o.config, ...args]);
  const clients = [];
  const res = { count: o.count, ups: [], firstFrames: [], problems: [], usable: 0 };
  try {
    for (let i = 1; i <= o.count; i++) {
      if (i === 1 || i % 10 === 0) o.log?.(`sessions: up ${i}/${o.count}`);
      const r = await run(moshctl(['up', 'target', '--no-connect', '--', 'sh', '-c', remote(i)]), env, 60000);
      const m = HAND_OVER.exec(r.stdout);
      if (r.code !== 0 || !m) {
        res.problems.push(
          `session ${i}: moshctl up --no-connect exited ${r.code}: ${redact(r.stderr).trim()}`,
        );
        continue;
      }
      res.ups.push(r.ms);
      const c = new Client(lab, i, m[2], m[3], m[1]);
      clients.push(c);
      try {
        res.firstFrames.push((await c.waitFor(`READY-${i}`, 15000)) - c.started);
        for (const pid of c.programs()) lab.track(pid);
        await c.roundTrip(1000 + i, 10000);
        c.usable = true;
      } catch (e) {
        res.problems.push(e.message);
      }
    }
    res.usable = clients.filter((c) => c.usable).length;

    // What every session costs the bastion, all of them open and idle: its relay,
    // and the /bin/sh that launched the relay when that still waits for it.
    const records = readRecords(state);
    res.records = records.length;
    const relays = records.flatMap((r) => r.relays.filter((x) => x.host === 'bastion'));
    const relayPids = [...new Set(relays.map((x) => x.pid))].filter(isRunning);
    const launchers = relayPids.map(parentOf).filter((pid) => pid && cmdline(pid).includes('moshctl-relay'));
    const onBastion = (await lab.pidsIn('bastion')).filter(
      (pid) => isRunning(pid) && !/^sshd:|\/sshd /.test(cmdline(pid)),
    );
    res.relayProcesses = relayPids.length;
    res.launcherProcesses = launchers.length;
    res.otherBastionProcesses = onBastion.filter(
      (pid) => !relayPids.includes(pid) && !launchers.includes(pid),
    ).length;
    res.runtimes = [...new Set(relays.map((x) => x.runtime))];
    res.relayExe = exeOf(relayPids[0]);
    const all = [...relayPids, ...launchers];
    await sleep(500);
    const t0 = all.map(cpuTicks);
    const w0 = process.hrtime.bigint();
    await sleep(o.idleS * 1000);
    const wall = Number(process.hrtime.bigint() - w0) / 1e9;
    const t1 = all.map(cpuTicks);
    const mb = (pids) => pids.reduce((s, pid) => s + rssKb(pid), 0) / 1024;
    const per = Math.max(1, records.length);
    res.relayRssPerSessionMb = mb(relayPids) / per;
    res.launcherRssPerSessionMb = mb(launchers) / per;
    res.rssPerSessionMb = mb(all) / per;
    const cpu = t1.reduce((s, t, i) => s + t - t0[i], 0) / CLK_TCK / wall;
    res.cpuPerSessionPct = (cpu * 100) / per;
    res.idleS = wall;

    o.log?.('sessions: status');
    const st = await run(moshctl(['status', '--json']), env, 600000);
    res.statusMs = st.ms;
    try {
      const sessions = JSON.parse(st.stdout).sessions;
      res.statusSessions = sessions.length;
      res.statusAlive = sessions.filter(
        (s) => s.server?.state === 'alive' && s.relays.every((x) => x.state === 'alive'),
      ).length;
    } catch {
      res.problems.push(`moshctl status --json exited ${st.code}: ${redact(st.stderr).trim()}`);
    }

    // All open at once, after the idle time: every one still answers.
    const again = await Promise.allSettled(
      clients.filter((c) => c.usable).map((c) => c.roundTrip(2000 + c.i, 10000)),
    );
    res.usableAtEnd = again.filter((a) => a.status === 'fulfilled').length;
    res.roundTrips = again.filter((a) => a.status === 'fulfilled').map((a) => a.value);
    for (const a of again)
      if (a.status === 'rejected') res.problems.push(`second check: ${a.reason.message}`);

    o.log?.('sessions: down --all');
    const down = await run(moshctl(['down', '--all']), env, 600000);
    res.downMs = down.ms;
    res.downStopped = (down.stdout.match(/: stopped /g) ?? []).length;
    if (down.code !== 0)
      res.problems.push(`moshctl down --all exited ${down.code}: ${redact(down.stderr).trim()}`);
  } finally {
    // mosh-client stays after its server is gone (it waits for the network): stop each by pid.
    await Promise.all(clients.map((c) => c.stop()));
    res.recordsLeft = readRecords(state).length;
    if (res.recordsLeft > 0) {
      // A failed run must not leave its servers and relays to the lab's teardown alone.
      await run(lab.clientCommand([process.execPath, o.moshctl, 'down', '--all']), env, 600000);
    }
    rmSync(state, { recursive: true, force: true });
  }
  // Give exiting processes a moment, then look on every host.
  const deadline = Date.now() + 10000;
  let left = await sessionProcesses(lab);
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(200);
    left = await sessionProcesses(lab);
  }
  res.processesLeft = left;
  if (res.recordsLeft > 0)
    res.problems.push(`${res.recordsLeft} session record(s) left after moshctl down --all`);
  if (left.length > 0) res.problems.push(`left running after down: ${left.join('; ')}`);
  return res;
}

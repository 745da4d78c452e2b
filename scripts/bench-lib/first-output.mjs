// Section 1 of `npm run bench` (and scripts/bench-up.mjs alone): `moshctl up`
// against `ssh -J` in the same alternating rounds, with two remote commands:
// one that sleeps 0.3 s after its first line (as before) and one that exits at
// once, which shows end to end without a sleep both sides share. Beside them,
// mosh by itself and the parts of the first output moshctl cannot shorten (the
// floor), each measured in the same lab.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The remote commands: `sleep` is the bench's old one, `exit` prints and exits at once. */
export const SCRIPTS = { sleep: 'echo FIRST-FRAME; sleep 0.3', exit: 'echo FIRST-FRAME' };
export const remoteOf = (script) => `sh -c '${script}'`;

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const ESC = String.fromCharCode(27);

/** Run a command in a terminal (script(1)); time its first FIRST-FRAME and its exit. */
export function timeRun(command, env = {}) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    let first;
    let out = '';
    // stdin stays open and silent, as a person who has not typed yet: at EOF script(1) would send
    // the terminal an end-of-file keystroke, and a mosh-client that starts at once would send it
    // on at its start, which makes mosh-server send its first frame some 230 ms sooner than without.
    const child = spawn('script', ['-qfec', `stty rows 40 cols 120; ${command}`, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LANG: 'C.UTF-8', ...env },
    });
    child.stdout.on('data', (d) => {
      out += d.toString();
      if (first === undefined && out.includes('FIRST-FRAME')) first = process.hrtime.bigint();
    });
    child.stderr.on('data', (d) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const end = process.hrtime.bigint();
      child.stdin.destroy();
      if (code !== 0 || first === undefined)
        reject(new Error(`${command} exited ${code}:\n${out.slice(-500)}`));
      else resolve({ first: Number(first - start) / 1e6, total: Number(end - start) / 1e6, out });
    });
  });
}

/** The `timing: …` lines of MOSHCTL_TIMING=1 in what a terminal recorded. */
export const timingLines = (text) =>
  text
    .replace(/\r/g, '')
    .split('\n')
    // Terminal escape sequences (script(1) records them) are not part of the timing lines.
    .map((l) => l.replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '').trim())
    .map((l) => /(?:moshctl: )?(timing: .*)$/.exec(l)?.[1])
    .filter(Boolean);

/** A command's wall time in ms (spawnSync), failing loudly. */
function timeSync(argv, opts = {}) {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 20_000, ...opts });
  const took = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return { ms: took, stdout: r.stdout, stderr: r.stderr };
}

/** `mosh-server new` in the target's namespace: its pid, port and key, and how long `new` took. */
function moshServerNew(lab, script) {
  const ns = lab.hosts.target.ns;
  const argv = ['ip', 'netns', 'exec', ns, 'mosh-server', 'new', '-p', '60900:60999', '-l', 'LANG=C.UTF-8'];
  const r = timeSync([...argv, '--', 'sh', '-c', script], { timeout: 10_000 });
  const connect = /MOSH CONNECT (\d+) (\S+)/.exec(r.stdout);
  const pid = Number(/detached, pid = (\d+)/.exec(r.stderr)?.[1]);
  if (!connect) throw new Error(`mosh-server new on the target: ${r.stdout}${r.stderr}`);
  if (pid > 0) lab.track(pid);
  return { ms: r.ms, port: connect[1], key: connect[2], pid };
}

function killQuietly(pid) {
  try {
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // gone, as it should be
  }
}

/**
 * mosh alone, as the floor under moshctl's first output: mosh-client started
 * in the target's namespace against a mosh-server already running there
 * (loopback: no ssh, no relay, no network), timed like the others.
 */
export async function moshAlone(lab, script) {
  const server = moshServerNew(lab, script);
  try {
    // The key goes in the environment only, as moshctl hands it over.
    const ns = lab.hosts.target.ns;
    return await timeRun(`ip netns exec ${ns} mosh-client 127.0.0.1 ${server.port}`, {
      MOSH_KEY: server.key,
    });
  } finally {
    // It exits with its command; a failed round must not leave it behind.
    killQuietly(server.pid);
  }
}

/**
 * How the benchmark reaches the lab: `ssh -J` and each moshctl build as
 * terminal command lines, per remote command (SCRIPTS' keys).
 */
export function commands(lab) {
  const ns = lab.hosts.client.ns;
  const ssh = (script) =>
    `ip netns exec ${ns} ${lab.sshArgv('target').map(q).join(' ')} ${q(remoteOf(script))}`;
  const up = (build, script, args = '') =>
    `ip netns exec ${ns} ${process.execPath} ${build.moshctl} -f ${lab.configFile} up target${args} -- ${remoteOf(script)}`;
  return { ssh, up };
}

/** The figure of a `timing: NAME N ms …` line (MOSHCTL_TIMING=1), or undefined. */
const timingOf = (lines, name) =>
  Number(lines.map((l) => new RegExp(`^timing: ${name} (\\d+) ms`).exec(l)?.[1]).find(Boolean) ?? NaN);

/**
 * One round of section 1: `ssh -J`, then each build's `moshctl up` (with
 * MOSHCTL_TIMING=1, whose lines on stderr cost nothing measurable), then mosh
 * alone, for each remote command; then one sample of each part of the floor.
 * Runs go to `res.runs` (arrays keyed by `ssh.sleep`, `up.NAME.exit`,
 * `mosh.exit` and so on), numbers to `res.parts`.
 */
export async function firstOutputRound(lab, o, res) {
  const c = commands(lab);
  res.runs ??= {};
  res.parts ??= {};
  const push = (key, r) => (res.runs[key] ??= []).push(r);
  const part = (key, ms) => (res.parts[key] ??= []).push(ms);
  for (const [kind, script] of Object.entries(SCRIPTS)) {
    push(`ssh.${kind}`, await timeRun(c.ssh(script)));
    for (const b of o.builds) {
      const r = await timeRun(c.up(b, script), { ...o.env, MOSHCTL_TIMING: '1' });
      const timing = timingLines(r.out);
      push(`up.${b.name}.${kind}`, { first: r.first, total: r.total, timing });
      part(`connect.${b.name}`, timingOf(timing, 'connect'));
    }
    push(`mosh.${kind}`, await moshAlone(lab, script));
  }
  await floorRound(lab, part);
}

/**
 * What the report needs of one configuration: medians, and the timing lines
 * of one measured run per build (the first round's, command exiting at once).
 */
export function section1Row(o, res) {
  const timing = Object.fromEntries(
    o.builds.map((b) => [b.name, (res.runs[`up.${b.name}.exit`] ?? []).map((r) => r.timing)]),
  );
  return { bastions: o.bastions, sshClient: o.sshClient, med: medians(res), timing };
}

/** Warms caches (binaries, keys, page cache) for every side before measuring. */
export async function warmUp(lab, o) {
  const c = commands(lab);
  await timeRun(c.ssh(SCRIPTS.exit));
  for (const b of o.builds) await timeRun(c.up(b, SCRIPTS.exit), o.env);
}

/** Medians of the first output and the end to end of every run a round filled, and of every part. */
export function medians(res) {
  return {
    ...Object.fromEntries(
      Object.entries(res.runs ?? {}).map(([k, runs]) => [
        k,
        { first: median(runs.map((r) => r.first)), total: median(runs.map((r) => r.total)), n: runs.length },
      ]),
    ),
    parts: Object.fromEntries(Object.entries(res.parts ?? {}).map(([k, xs]) => [k, median(xs)])),
  };
}

/**
 * `ssh -J` logging in to every hop without running anything: from its start
 * until the target's `Authenticated to` line (LogLevel VERBOSE), then stopped
 * by pid. OpenSSH's logins, as the floor of moshctl's own.
 */
function sshLogins(lab) {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = lab.clientCommand([
      ...lab.sshArgv('target').slice(0, -1),
      '-N',
      '-o',
      'LogLevel=VERBOSE',
      lab.sshArgv('target').at(-1),
    ]);
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    lab.track(child.pid);
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ssh -J -N: no "Authenticated to" within 20 s: ${err}`));
    }, 20_000);
    child.stderr.on('data', (d) => {
      err += d;
      if (/^Authenticated to /m.test(err)) {
        const ms = Number(process.hrtime.bigint() - start) / 1e6;
        clearTimeout(timer);
        child.kill('SIGTERM');
        child.once('exit', () => resolve(ms));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!/^Authenticated to /m.test(err)) reject(new Error(`ssh -J -N exited ${code}: ${err}`));
    });
  });
}

/**
 * The login shell sshd runs every remote command with, as the lab's remote
 * user (root): `SHELL -c true` with an ssh session's variables (bash reads
 * ~/.bashrc when SSH_CLIENT is set), in the target's namespace, less
 * `/bin/sh -c true` there. What each exec on the target pays before its command runs.
 */
function loginShellCost(lab) {
  const ns = lab.hosts.target.ns;
  const shell = spawnSync('getent', ['passwd', 'root'], { encoding: 'utf8' }).stdout.trim().split(':')[6];
  const env = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: '/root',
    USER: 'root',
    LOGNAME: 'root',
    SHELL: shell,
    SSH_CLIENT: '192.0.2.10 40000 22',
    SSH_CONNECTION: '192.0.2.10 40000 203.0.113.1 22',
  };
  const login = timeSync(['ip', 'netns', 'exec', ns, shell, '-c', 'true'], { env }).ms;
  const plain = timeSync(['ip', 'netns', 'exec', ns, '/bin/sh', '-c', 'true'], { env }).ms;
  return login - plain;
}

/**
 * One sample of each part of the floor, in the round's turn: `node -e 0` in
 * the client's namespace (the least a Node program takes), OpenSSH's logins,
 * the target's login shell, and `mosh-server new` until its parent exits (it
 * has printed MOSH CONNECT and detached). See the report for how they add up.
 */
async function floorRound(lab, part) {
  part('node', timeSync(lab.clientCommand([process.execPath, '-e', '0'])).ms);
  part('sshLogins', await sshLogins(lab));
  part('loginShell', loginShellCost(lab));
  const s = moshServerNew(lab, 'true');
  killQuietly(s.pid);
  part('moshServer', s.ms);
}

/** Section 1 alone for one lab: a warm-up, then `rounds` alternating rounds. */
export async function measureFirstOutput(lab, o) {
  const state = mkdtempSync(join(tmpdir(), 'moshctl-bench-up-'));
  const env = { XDG_STATE_HOME: state };
  const ctx = { ...o, env };
  const res = {};
  try {
    if (!o.smoke) await warmUp(lab, ctx);
    for (let i = 0; i < o.rounds; i++) {
      o.log?.(`round ${i + 1}/${o.rounds}`);
      await firstOutputRound(lab, ctx, res);
    }
    return section1Row(o, res);
  } finally {
    for (const b of o.builds)
      spawnSync(
        'ip',
        [
          'netns',
          'exec',
          lab.hosts.client.ns,
          process.execPath,
          b.moshctl,
          '-f',
          lab.configFile,
          'down',
          '--all',
        ],
        { env: { ...process.env, ...env }, stdio: 'ignore', timeout: 20_000 },
      );
    rmSync(state, { recursive: true, force: true });
  }
}

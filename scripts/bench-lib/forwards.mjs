// Port forwards for the benchmark: `moshctl up target -L …` against
// `ssh -J bastion -L …` of the same path, in the same lab and run. Both lead
// to tcp-bench-server.mjs on the target's loopback (a sink and an echo);
// tcp-load.mjs in the client namespace measures throughput (BYTES to the
// sink), added latency (small messages echoed, one in flight) and, after a
// client address change, the time until a connection through the forward
// echoes again. moshctl's forward lives as long as its `up` (in tmux, with a
// remote command that sleeps); a `moshctl up` that refuses -L (before the
// feature) makes its side "not available", with moshctl's words, and the
// baseline is still measured.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const lib = fileURLToPath(new URL('./', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Ports in the lab's fresh namespaces: the servers on the target, then each side's local ports.
const SINK = 7180;
const ECHO = 7181;
const BASE = { sink: 17180, echo: 17181 };
const MOSHCTL = { sink: 27180, echo: 27181 };
const READY = 'FWD-READY';

async function load(lab, args, timeoutMs) {
  const r = await lab.exec('client', [process.execPath, join(lib, 'tcp-load.mjs'), ...args], { timeoutMs });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`tcp-load ${args.join(' ')}: exit ${r.code}: ${r.stdout}${r.stderr}`);
  }
}

/** Waits until a connection to 127.0.0.1:port in the client namespace echoes (the path works end to end). */
async function untilEchoes(lab, port, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await load(lab, ['pingpong', '127.0.0.1', String(port), '1', '0', '8'], 10_000).catch(
      () => null,
    );
    if (r) return;
    if (Date.now() > deadline)
      throw new Error(`nothing echoes through 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** `ssh -J bastion -N -L sink -L echo target`, as a user would forward the same path. */
function startSsh(lab, spawnTracked) {
  const [ssh, ...rest] = lab.sshArgv('target');
  return spawnTracked(lab, 'client', [
    ssh,
    '-N',
    '-o',
    'ExitOnForwardFailure=yes',
    '-L',
    `127.0.0.1:${BASE.sink}:127.0.0.1:${SINK}`,
    '-L',
    `127.0.0.1:${BASE.echo}:127.0.0.1:${ECHO}`,
    ...rest,
  ]);
}

/**
 * `moshctl up target -L … -L … -- sh -c 'echo FWD-READY; exec sleep …'` in
 * tmux. Resolves with the session once the remote command's line shows, or
 * with `{ unavailable }` when moshctl exits first (an option it refuses).
 */
async function startMoshctl(lab, o, dir) {
  const err = join(dir, 'fwd.err');
  const state = join(dir, 'state-fwd');
  const up = [
    process.execPath,
    o.moshctl,
    '-f',
    lab.configFile,
    'up',
    'target',
    '-L',
    `127.0.0.1:${MOSHCTL.sink}:127.0.0.1:${SINK}`,
    '-L',
    `127.0.0.1:${MOSHCTL.echo}:127.0.0.1:${ECHO}`,
    '--',
    'sh',
    '-c',
    `echo ${READY}; exec sleep 100000`,
  ];
  const tmux = await o.Tmux.start(lab, {
    name: 'bench-fwd',
    // sh only to keep moshctl's stderr off the screen; exec leaves moshctl the pane's program.
    command: ['sh', '-c', 'e=$1; shift; exec "$@" 2>>"$e"', 'sh', err, ...up],
    env: { XDG_STATE_HOME: state },
  });
  const stderr = () => (existsSync(err) ? readFileSync(err, 'utf8') : '');
  const deadline = Date.now() + 40_000;
  for (;;) {
    if ((await tmux.capture()).includes(READY)) break;
    const code = await tmux.exitStatus();
    if (code !== undefined) {
      await tmux.kill();
      const why = stderr().trim().split('\n')[0] ?? '';
      return { unavailable: `\`moshctl up -L\` exited ${code}: ${why}` };
    }
    if (Date.now() > deadline) {
      await tmux.kill();
      return { unavailable: `no ${READY} within 40 s: ${stderr().trim().split('\n').slice(-3).join(' / ')}` };
    }
    await sleep(100);
  }
  return { tmux, state, stderr };
}

/** Ctrl-C ends the remote sleep, so mosh-server, mosh-client and moshctl (which tears down) exit. */
async function stopMoshctl(lab, o, session, problems) {
  const { tmux, state, stderr } = session;
  await tmux.sendKey('C-c').catch(() => undefined);
  const t = Date.now();
  let code;
  while ((code = await tmux.exitStatus()) === undefined && Date.now() - t < 30_000) await sleep(100);
  await tmux.kill();
  const dir = join(state, 'moshctl', 'sessions');
  const left = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  if (code !== 0) problems.push(`forwards: moshctl up exited ${code ?? '(killed)'}: ${stderr().trim()}`);
  if (left.length > 0) {
    await lab.exec(
      'client',
      ['env', `XDG_STATE_HOME=${state}`, process.execPath, o.moshctl, '-f', lab.configFile, 'down', '--all'],
      { timeoutMs: 60_000 },
    );
    problems.push(`forwards: ${left.length} session record(s) left after moshctl up exited`);
  }
}

/**
 * From a client address change to the first echo through the forward at
 * `port`: the poller starts before the roam and is told the roam's end.
 * `afterRoam` runs right after it (the baseline starts its new ssh there).
 */
async function timeRecovery(lab, port, afterRoam = async () => undefined) {
  const [cmd, ...args] = lab.clientCommand([
    process.execPath,
    join(lib, 'tcp-load.mjs'),
    'recover',
    '127.0.0.1',
    String(port),
    '30000',
  ]);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  lab.track(child.pid);
  child.stdin.on('error', () => undefined);
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((r) => child.on('exit', r));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`tcp-load recover ended early: ${err}`);
    return JSON.parse(value);
  };
  await next(); // ready
  await lab.roam();
  const t0 = Date.now();
  await afterRoam();
  child.stdin.write(`go ${t0}\n`);
  const r = await next();
  child.stdin.end();
  await Promise.race([exited, sleep(5000)]);
  return r.ms;
}

/**
 * One lab's forward figures: `rounds` alternating rounds of throughput (BYTES)
 * and of recovery after a roam, one latency run of N round trips per side.
 */
export async function measureForwards(lab, o) {
  const { spawnTracked } = o;
  const problems = [];
  const res = {
    sshClient: lab.sshClient,
    bytes: o.bytes,
    n: o.n,
    rounds: o.rounds,
    base: { mibs: [], roam: [] },
    moshctl: { mibs: [], roam: [] },
    problems,
  };
  const dir = mkdtempSync(join(tmpdir(), 'moshctl-bench-fwd-'));
  const server = spawnTracked(lab, 'target', [
    process.execPath,
    join(lib, 'tcp-bench-server.mjs'),
    String(SINK),
    String(ECHO),
  ]);
  let ssh;
  let session;
  try {
    ssh = startSsh(lab, spawnTracked);
    await untilEchoes(lab, BASE.echo, 15_000);
    o.log?.(`forwards (${lab.sshClient}): moshctl up -L`);
    session = await startMoshctl(lab, o, dir);
    if (session.unavailable) {
      res.moshctl.unavailable = session.unavailable;
      session = undefined;
    } else await untilEchoes(lab, MOSHCTL.echo, 15_000);

    const sides = [['base', BASE], ...(session ? [['moshctl', MOSHCTL]] : [])];
    for (let i = 0; i < o.rounds; i++) {
      o.log?.(`forwards (${lab.sshClient}): throughput round ${i + 1}/${o.rounds}`);
      for (const [side, ports] of i % 2 === 0 ? sides : [...sides].reverse()) {
        const r = await load(lab, ['throughput', '127.0.0.1', String(ports.sink), String(o.bytes)], 300_000);
        res[side].mibs.push(r.mibs);
      }
    }
    for (const [side, ports] of sides) {
      o.log?.(`forwards (${lab.sshClient}): latency ${side}`);
      res[side].latency = await load(
        lab,
        ['pingpong', '127.0.0.1', String(ports.echo), String(o.n), String(o.warm), '64'],
        60_000 + o.n * 100,
      );
    }
    for (let i = 0; i < o.rounds; i++) {
      o.log?.(`forwards (${lab.sshClient}): roam round ${i + 1}/${o.rounds}`);
      for (const [side] of i % 2 === 0 ? sides : [...sides].reverse()) {
        if (side === 'moshctl') {
          const ms = await timeRecovery(lab, MOSHCTL.echo);
          if (ms === null)
            problems.push(`forwards (${lab.sshClient}): no echo through moshctl's -L within 30 s of a roam`);
          else res.moshctl.roam.push(ms);
        } else {
          // ssh's connection died with the old address: a user starts ssh again, at once.
          await ssh.stop();
          const ms = await timeRecovery(lab, BASE.echo, async () => {
            ssh = startSsh(lab, spawnTracked);
          });
          if (ms === null)
            problems.push(`forwards (${lab.sshClient}): no echo through a new ssh -J -L within 30 s`);
          else res.base.roam.push(ms);
        }
      }
    }
  } finally {
    if (session) await stopMoshctl(lab, o, session, problems);
    await ssh?.stop();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return res;
}

/** Sizes of a run: BENCH_SMOKE's tiny one or the full one (`rounds` from ROUNDS, default 7). */
export function forwardOptions(smoke, rounds) {
  return smoke
    ? { bytes: 1 << 20, n: 50, warm: 5, rounds: 1 }
    : { bytes: 64 << 20, n: 2000, warm: 100, rounds: Number(rounds ?? 7) };
}

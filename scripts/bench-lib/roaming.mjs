// Roaming for `npm run bench`: how long after the client's address changes a
// session shows output again, through a relay on the bastion and without one.
//
// The remote command prints a tick with the wall clock in ms every ~25 ms
// (lab namespaces share the machine's clock). After lab.roam() returns, the
// first tick on mosh-client's screen stamped later than that was made after
// the roam, so it can only have come back through the client's new address:
// the time from the roam's end to that screen is the figure. The screen is read
// through tmux (the lab's Tmux driver), which renders mosh-client's frames.
// A side may add `up` arguments (e.g. `--transport tcp`), so the same method
// compares transports too.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// About 40 ticks a second: the tick period adds at most its own length to a figure.
export const TICKER = 'while :; do echo "TICK $(date +%s%3N)"; sleep 0.02; done';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Newest tick stamp on the screen (0 when none). */
const newestTick = (screen) =>
  Math.max(0, ...[...screen.matchAll(/TICK (\d{13})/g)].map((m) => Number(m[1])));

/** Polls the screen until a tick newer than `after` shows; returns when it was seen (Date.now()). */
async function tickAfter(tmux, after, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const screen = await tmux.capture();
    const seen = Date.now();
    if (newestTick(screen) > after) return seen;
    if (seen > deadline) throw new Error(`no tick after ${after} within ${timeoutMs} ms; screen:\n${screen}`);
    await sleep(20);
  }
}

/**
 * One session of `moshctl up HOST [ARGS] -- sh -c TICKER` in tmux: wait for
 * ticks, let it settle, roam, time the next tick, end the session with Ctrl-C
 * (the ticker exits, so do mosh-server, mosh-client and moshctl, which tears down).
 */
async function roamOnce(lab, o, side, n) {
  const { Tmux } = o;
  const { host, args = [] } = o.sides[side];
  const name = `roam-${side}-${n}`;
  const err = join(o.dir, `${name}.err`);
  const state = join(o.dir, `state-${name}`);
  const up = [process.execPath, o.moshctl, '-f', o.config, 'up', host, ...args, '--', 'sh', '-c', TICKER];
  const tmux = await Tmux.start(lab, {
    name,
    // sh only to keep moshctl's stderr off the screen; exec leaves moshctl the pane's program.
    command: ['sh', '-c', 'e=$1; shift; exec "$@" 2>>"$e"', 'sh', err, ...up],
    // MOSHCTL_TIMING: moshctl's teardown steps, to say where the time after a roam goes.
    env: { XDG_STATE_HOME: state, MOSHCTL_TIMING: '1' },
  });
  const stderr = () => {
    try {
      return readFileSync(err, 'utf8');
    } catch {
      return '';
    }
  };
  let result;
  try {
    await tickAfter(tmux, 0, 30000);
    await sleep(o.settleMs);
    const before = Date.now();
    const address = await lab.roam();
    const after = Date.now();
    const seen = await tickAfter(tmux, after, o.timeoutMs);
    result = { ms: seen - after, roamMs: after - before, address };
  } catch (e) {
    throw new Error(`roaming (${side}): ${e.message}\nmoshctl stderr:\n${stderr()}`, { cause: e });
  } finally {
    const t = Date.now();
    await tmux.sendKey('C-c').catch(() => undefined);
    let code;
    while ((code = await tmux.exitStatus()) === undefined && Date.now() - t < o.exitTimeoutMs)
      await sleep(100);
    const exitMs = Date.now() - t;
    await tmux.kill();
    const left = leftRecords(state);
    if (left.length > 0) {
      // moshctl did not finish its own teardown: say so, and end the session from its record.
      const down = spawnSync(
        'ip',
        ['netns', 'exec', lab.hosts.client.ns, process.execPath, o.moshctl, 'down', '--all'],
        {
          env: { ...process.env, XDG_STATE_HOME: state },
          encoding: 'utf8',
          timeout: 60000,
        },
      );
      o.problems.push(
        `roaming (${side}): ${left.length} session record(s) left after moshctl up exited ${code}; moshctl down --all: exit ${down.status}`,
      );
    }
    if (result) {
      result.exitMs = exitMs;
      // Teardown steps run side by side: the longest is what the user waits for.
      result.teardownMs = Math.max(
        0,
        ...[...stderr().matchAll(/timing: stop (\d+) ms/g)].map((m) => Number(m[1])),
      );
      result.exitCode = code;
      if (code !== 0)
        o.problems.push(
          `roaming (${side}): moshctl up exited ${code ?? '(still running, killed)'}: ${stderr().trim()}`,
        );
    }
  }
  return result;
}

function leftRecords(state) {
  const dir = join(state, 'moshctl', 'sessions');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
}

/**
 * `rounds` rounds, each one session per side, in alternating order (reversed
 * every other round). Sides are `{ NAME: { host, args? } }`, `args` added to
 * `up`; by default one through the bastion's relay (`relay`: host `target`)
 * and one straight to a host on the client's LAN (`direct`, no relay).
 * Returns every round's figures by side.
 */
export async function measureRoaming(lab, opts) {
  const o = {
    settleMs: 1000,
    timeoutMs: 30000,
    exitTimeoutMs: 30000,
    problems: [],
    sides: { relay: { host: 'target' }, direct: { host: 'direct' } },
    ...opts,
  };
  o.dir = mkdtempSync(join(tmpdir(), 'moshctl-bench-roam-'));
  const names = Object.keys(o.sides);
  const res = Object.fromEntries(names.map((k) => [k, []]));
  try {
    for (let i = 0; i < o.rounds; i++) {
      const order = i % 2 === 0 ? names : [...names].reverse();
      for (const side of order) {
        o.log?.(`roaming round ${i + 1}/${o.rounds}: ${side}`);
        res[side].push(await roamOnce(lab, o, side, i + 1));
      }
    }
  } finally {
    rmSync(o.dir, { recursive: true, force: true });
  }
  return { ...res, problems: o.problems };
}

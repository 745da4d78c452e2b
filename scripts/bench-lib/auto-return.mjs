// transport auto coming back to UDP, for `npm run bench` (section 8) and
// scripts/bench-auto.mjs: how long after UDP passes again a session that went
// by tcp is carried by UDP once more.
//
// Each round starts `moshctl up target --transport auto -- sh -c CMD` in tmux
// with UDP from the client dropped (nftables), so the session goes by tcp;
// once its record says so, UDP is let through again. The figure runs from the
// moment the rule is gone to the moment moshctl switched back, as it stamps
// the change in the session record (path.since: the same clock, lab namespaces
// share the machine's). Two kinds of session: `busy` prints a tick every 20 ms
// (a session in use: mosh-server sends at once), `idle` prints once and waits
// (mosh then sends a heartbeat about every 3 s each way, and the switch waits
// for mosh-server's first datagram by UDP). The bound it is set beside is the
// probe interval: UDP is probed that often while the session is on tcp.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TICKER } from './roaming.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const KINDS = {
  busy: { command: TICKER, ready: /TICK \d{13}/ },
  idle: { command: 'echo IDLE-READY; exec sleep 600', ready: /IDLE-READY/ },
};

function sessionPath(state) {
  const dir = join(state, 'moshctl', 'sessions');
  if (!existsSync(dir)) return undefined;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    try {
      return JSON.parse(readFileSync(join(dir, f), 'utf8')).path;
    } catch {
      // being rewritten: read again next time
    }
  }
  return undefined;
}

async function waitForPath(state, test, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = sessionPath(state);
    if (p && test(p)) return p;
    if (Date.now() > deadline)
      throw new Error(`${what} not seen within ${timeoutMs} ms (path: ${JSON.stringify(p)})`);
    await sleep(25);
  }
}

async function returnOnce(lab, o, kind, n) {
  const { Tmux } = o;
  const name = `auto-${kind}-${n}`;
  const err = join(o.dir, `${name}.err`);
  const state = join(o.dir, `state-${name}`);
  const up = [process.execPath, o.moshctl, '-f', o.config, 'up', 'target', '--transport', 'auto'];
  await lab.blockUdp('client', true);
  const tmux = await Tmux.start(lab, {
    name,
    command: [
      'sh',
      '-c',
      'e=$1; shift; exec "$@" 2>>"$e"',
      'sh',
      err,
      ...up,
      '--',
      'sh',
      '-c',
      KINDS[kind].command,
    ],
    env: { XDG_STATE_HOME: state },
  });
  const stderr = () => (existsSync(err) ? readFileSync(err, 'utf8') : '');
  try {
    await tmux.waitFor(KINDS[kind].ready, 30000);
    await waitForPath(state, (p) => p.via === 'tcp' && p.changes === 1, 10000, 'the switch to tcp');
    // Probes go out every few seconds: spread where UDP comes back within that interval.
    await sleep(1000 + ((n * 7) % 10) * (o.probeEveryMs / 10));
    await lab.blockUdp('client', false);
    const passed = Date.now();
    const p = await waitForPath(state, (x) => x.via === 'udp', o.timeoutMs, 'the switch back to udp');
    return Date.parse(p.since) - passed;
  } catch (e) {
    throw new Error(`auto's return (${kind}): ${e.message}\nmoshctl stderr:\n${stderr()}`, { cause: e });
  } finally {
    await lab.blockUdp('client', false);
    const t = Date.now();
    await tmux.sendKey('C-c').catch(() => undefined);
    let code;
    while ((code = await tmux.exitStatus()) === undefined && Date.now() - t < 30000) await sleep(100);
    await tmux.kill();
    const dir = join(state, 'moshctl', 'sessions');
    const left = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
    if (left.length > 0 || code !== 0) {
      spawnSync('ip', ['netns', 'exec', lab.hosts.client.ns, process.execPath, o.moshctl, 'down', '--all'], {
        env: { ...process.env, XDG_STATE_HOME: state },
        timeout: 60000,
      });
      o.problems.push(
        `auto's return (${kind}): moshctl up exited ${code ?? '(killed)'} with ${left.length} record(s) left`,
      );
    }
  }
}

/**
 * `rounds` rounds of each kind (busy, idle; `kinds` to choose), alternating.
 * Returns { busy: [ms], idle: [ms], probeEveryMs, problems }.
 */
export async function measureAutoReturn(lab, opts) {
  const { PROBE_EVERY_MS } = await import('../../dist/execute/udp-return.js');
  const o = {
    kinds: ['busy', 'idle'],
    timeoutMs: 30000,
    probeEveryMs: PROBE_EVERY_MS,
    problems: [],
    ...opts,
  };
  o.dir = mkdtempSync(join(tmpdir(), 'moshctl-bench-auto-'));
  const res = { probeEveryMs: o.probeEveryMs, problems: o.problems };
  for (const k of o.kinds) res[k] = [];
  try {
    for (let i = 0; i < o.rounds; i++)
      for (const kind of i % 2 ? [...o.kinds].reverse() : o.kinds) {
        o.log?.(`auto's return to udp: ${kind}, round ${i + 1}`);
        try {
          res[kind].push(await returnOnce(lab, o, kind, i));
        } catch (e) {
          o.problems.push(e.message.split('\n')[0]);
        }
      }
  } finally {
    rmSync(o.dir, { recursive: true, force: true });
  }
  return res;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The report's lines for measureAutoReturn's result. */
export function autoReturnReport(r) {
  const s = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const bound = r.probeEveryMs;
  const lines = [
    `Coming back to UDP: \`moshctl up target --transport auto\` started with UDP from the client dropped (so on tcp); once its record says tcp, UDP is let through again, at a varying point of the probe interval. The figure runs from the moment the nftables rule is gone to the switch back to udp as moshctl stamps it in the session record (\`path.since\`, what \`moshctl status\` shows). While on tcp moshctl probes UDP through the relays every ${s(bound)}: that is the bound a session in use should meet. An answered probe starts a trial (each datagram goes both ways), and the switch comes with mosh-server's first datagram by UDP: at once when the session is busy, at mosh's next heartbeat (about every 3 s each way) when it is idle.`,
    '',
    '| session | rounds | median | min | max | bound (probe interval) | each round |',
    '|---|---:|---:|---:|---:|---:|---|',
  ];
  for (const [kind, label] of [
    ['busy', 'busy (a tick every 20 ms)'],
    ['idle', 'idle (no output, no typing)'],
  ]) {
    const xs = r[kind];
    if (!xs?.length) continue;
    lines.push(
      `| ${label} | ${xs.length} | ${s(median(xs))} | ${s(Math.min(...xs))} | ${s(Math.max(...xs))} | ${s(bound)}${kind === 'idle' ? ' + mosh heartbeat' : ''} | ${xs.map(s).join(', ')} |`,
    );
  }
  for (const p of r.problems) lines.push('', `- Problem: ${p}`);
  lines.push('');
  return lines;
}

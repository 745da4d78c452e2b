#!/usr/bin/env node
// transport auto alone (section 8's auto rows of docs/benchmarks.md, and
// more): what auto costs where UDP passes, against udp in the same run
// (added latency, moshctl's CPU per round trip, first output and end to end),
// and how soon a session that went by tcp comes back to UDP once it passes.
// Needs root and a build (`npm run build`). Prints markdown.
//   ROUNDS=N        rounds of each figure (default 7)
//   BENCH_SMOKE=1   tiny run: 1 round, 200 round trips, the busy return only
//   PARTS=a,b       which: cost,return (default both)
//   BENCH_OUT=FILE  also write the report there
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureAutoLatency, measureAutoStart } from './bench-lib/auto-cost.mjs';
import { autoReturnReport, measureAutoReturn } from './bench-lib/auto-return.mjs';

if (process.getuid?.() !== 0) {
  console.error('bench-auto: builds network namespaces and needs root');
  process.exit(1);
}
const { Lab, Tmux } = await import('../dist/lab/index.js');
const SMOKE = process.env.BENCH_SMOKE === '1';
const ROUNDS = SMOKE ? 1 : Number(process.env.ROUNDS ?? 7);
const N = SMOKE ? 200 : 2000;
const WARM = SMOKE ? 20 : 100;
const parts = (process.env.PARTS ?? 'cost,return').split(',');
const moshctl = fileURLToPath(new URL('../bin/moshctl.js', import.meta.url));
const log = (s) => console.error(`bench-auto: ${s}`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const us = (x) => `${Math.round(x)} µs`;
const ms = (x) => `${Math.round(x)} ms`;
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

const started = Date.now();
const L = [];
const p = (s = '') => L.push(s);
const problems = [];
const lab = await Lab.create({ sshClient: 'ssh2' });
const state = mkdtempSync(join(tmpdir(), 'moshctl-bench-auto-'));
try {
  p('### transport auto: its cost where UDP passes, and its return to UDP');
  p();
  if (parts.includes('cost')) {
    const lat = await measureAutoLatency(lab, { rounds: ROUNDS, n: N, warm: WARM, log });
    const start = await measureAutoStart(lab, { rounds: ROUNDS, moshctl, state, log });
    const m = (mode, k) => median(lat[mode].map((r) => r[k]));
    p(
      `Added latency: moshctl's runner builds each path as \`up\` does (scripts/bench-lib/transport-path.mjs), ending at a UDP echo on the target; then ${N} round trips of 1300 bytes, one in flight, after ${WARM} warm-up, from the client. udp: straight to the relay on the bastion, as mosh-client sends with \`--transport udp\`. auto: to moshctl's port on the loopback, on by UDP to that relay. Medians over ${ROUNDS} rounds in which the two take turns; CPU is the time moshctl's main thread spent on a processor during the ping-pong, per round trip.`,
    );
    p();
    p(
      '| path | p50 | added p50 | p99 | added p99 | ratio p99 | round trips/s | moshctl CPU per round trip | lost |',
    );
    p('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const mode of ['udp', 'auto']) {
      const stayed = lat[mode].every((r) => r.mode === 'udp') ? '' : ' (switched to tcp!)';
      p(
        `| ${mode}${stayed} | ${us(m(mode, 'p50'))} | ${us(m(mode, 'p50') - m('udp', 'p50'))} | ${us(m(mode, 'p99'))} | ${us(m(mode, 'p99') - m('udp', 'p99'))} | ${ratio(m(mode, 'p99'), m('udp', 'p99'))} | ${Math.round(m(mode, 'rps'))} | ${mode === 'udp' ? '–' : us(m(mode, 'cpuUsPerRoundTrip'))} | ${lat[mode].reduce((a, r) => a + r.lost, 0)}/${N * ROUNDS} |`,
      );
    }
    p();
    p(
      `Each round, p50 / p99 (µs), udp then auto: ${lat.udp.map((r, i) => `${Math.round(r.p50)}/${Math.round(r.p99)} ${Math.round(lat.auto[i]?.p50 ?? NaN)}/${Math.round(lat.auto[i]?.p99 ?? NaN)}`).join('; ')}.`,
    );
    p();
    p(
      `First output and end to end of \`moshctl up target -- sh -c 'echo FIRST-FRAME'\` (a command that exits at once) in a terminal, with and without \`--transport auto\`, medians of ${ROUNDS} alternating rounds after a warm-up of each:`,
    );
    p();
    p('| | udp | auto | auto / udp | auto − udp |');
    p('|---|---:|---:|---:|---:|');
    for (const [label, k] of [
      ['first output', 'first'],
      ['end to end', 'total'],
    ]) {
      const u = median(start.udp.map((r) => r[k]));
      const a = median(start.auto.map((r) => r[k]));
      p(`| ${label} | ${ms(u)} | ${ms(a)} | ${ratio(a, u)} | ${ms(a - u)} |`);
    }
    p();
  }
  if (parts.includes('return')) {
    const r = await measureAutoReturn(lab, {
      rounds: ROUNDS,
      kinds: SMOKE ? ['busy'] : ['busy', 'idle'],
      config: lab.configFile,
      moshctl,
      Tmux,
      log,
    });
    for (const l of autoReturnReport(r)) p(l);
    problems.push(...r.problems);
  }
} finally {
  rmSync(state, { recursive: true, force: true });
  await lab.destroy();
}
const text = L.join('\n');
if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, `${text}\n`);
console.log(text);
log(`${((Date.now() - started) / 1000).toFixed(0)} s`);
if (problems.length > 0) process.exit(1);

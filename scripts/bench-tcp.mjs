#!/usr/bin/env node
// The tcp transport's rows of `npm run bench` alone (section 8 of
// docs/benchmarks.md): added latency of tcp over udp, and recovery after a
// roam with tcp next to udp, in a one-bastion lab per ssh client, each figure
// beside its udp baseline from the same run. Needs root and a build
// (`npm run build`). Prints the tables as markdown.
//   ROUNDS=N          alternating roaming rounds (default 7)
//   MODES=a,b         paths for the latency table (default udp,tcp; auto too if asked)
//   SSH_CLIENTS=a,b   which ssh clients (default ssh2,openssh)
//   BENCH_SMOKE=1     tiny run: 200 round trips, 1 roaming round
//   BENCH_OUT=FILE    also write the tables there
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { measureRoaming } from './bench-lib/roaming.mjs';
import { latencyTable, roamTable, transportLatency } from './bench-lib/tcp-section.mjs';

if (process.getuid?.() !== 0) {
  console.error('bench-tcp: builds network namespaces and needs root');
  process.exit(1);
}
const { Lab, Tmux } = await import('../dist/lab/index.js');
const SMOKE = process.env.BENCH_SMOKE === '1';
const ROUNDS = SMOKE ? 1 : Number(process.env.ROUNDS ?? 7);
const N = SMOKE ? 200 : 2000;
const WARM = SMOKE ? 20 : 100;
const clients = (process.env.SSH_CLIENTS ?? 'ssh2,openssh').split(',');
const modes = (process.env.MODES ?? 'udp,tcp').split(',');
const moshctl = fileURLToPath(new URL('../bin/moshctl.js', import.meta.url));
const log = (s) => console.error(`bench-tcp: ${s}`);
const started = Date.now();
const latency = {};
const roam = {};
const problems = [];
for (const sshClient of clients) {
  const lab = await Lab.create({ sshClient });
  try {
    latency[sshClient] = await transportLatency(lab, { modes, n: N, warm: WARM, log });
    // Last in this lab: roaming moves the client to new addresses.
    roam[sshClient] = await measureRoaming(lab, {
      rounds: ROUNDS,
      config: lab.configFile,
      moshctl,
      Tmux,
      log,
      sides: { relay: { host: 'target' }, tcp: { host: 'target', args: ['--transport', 'tcp'] } },
    });
    problems.push(...roam[sshClient].problems);
  } finally {
    await lab.destroy();
  }
}
const text = [
  `Added latency (${N} round trips of 1300 bytes after ${WARM} warm-up; µs):`,
  '',
  ...latencyTable(latency, { n: N }),
  '',
  `Recovery after a roam (${ROUNDS} alternating rounds):`,
  '',
  ...roamTable(roam),
  ...problems.map((p) => `- Problem: ${p}`),
].join('\n');
if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, `${text}\n`);
console.log(text);
console.error(`bench-tcp: ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (problems.length > 0) process.exit(1);

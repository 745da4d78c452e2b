#!/usr/bin/env node
// The port-forward rows of `npm run bench` alone (section 9 of docs/benchmarks.md):
// `moshctl up -L` against `ssh -J -L` in a one-bastion lab per ssh client.
// Needs root and a build (`npm run build`). Prints the section as markdown.
//   ROUNDS=N           alternating rounds of throughput and roaming (default 7)
//   BENCH_SMOKE=1      tiny run: 1 MiB, 50 round trips, 1 round
//   SSH_CLIENTS=a,b    which ssh clients (default ssh2,openssh)
//   BENCH_OUT=FILE     also write the section there
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { forwardOptions, measureForwards } from './bench-lib/forwards.mjs';
import { forwardsReport } from './bench-lib/forwards-report.mjs';

if (process.getuid?.() !== 0) {
  console.error('bench-forwards: builds network namespaces and needs root');
  process.exit(1);
}
const { Lab, Tmux, spawnTracked } = await import('../dist/lab/index.js');
const SMOKE = process.env.BENCH_SMOKE === '1';
const clients = (process.env.SSH_CLIENTS ?? 'ssh2,openssh').split(',');
const moshctl = fileURLToPath(new URL('../bin/moshctl.js', import.meta.url));
const log = (s) => console.error(`bench-forwards: ${s}`);
const started = Date.now();
const rows = [];
for (const sshClient of clients) {
  const lab = await Lab.create({ sshClient });
  try {
    rows.push(
      await measureForwards(lab, {
        ...forwardOptions(SMOKE, process.env.ROUNDS),
        moshctl,
        Tmux,
        spawnTracked,
        log,
      }),
    );
  } finally {
    await lab.destroy();
  }
}
const text = forwardsReport(rows).join('\n');
if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, `${text}\n`);
console.log(text);
console.error(`bench-forwards: ${((Date.now() - started) / 1000).toFixed(0)} s`);
const problems = rows.flatMap((r) => r.problems);
if (problems.length > 0) process.exit(1);

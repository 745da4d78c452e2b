#!/usr/bin/env node
// Section 1 of `npm run bench` alone: `moshctl up` against `ssh -J` (first output
// and end to end), mosh's own share and the floor, in a fresh lab per
// configuration. Needs root and a build (`npm run build`). Prints the section as markdown.
//   ROUNDS=N           alternating rounds (default 7)
//   BENCH_SMOKE=1      tiny run: 1 round, no warm-up
//   SSH_CLIENTS=a,b    which ssh clients (default ssh2,openssh)
//   BASTIONS=1,2       how many bastions (default 1,2)
//   BENCH_OLD=PATH     another build's bin/moshctl.js (a checkout of an older commit, built),
//                      measured in the same rounds beside this one, as "old"
//   BENCH_OUT=FILE     also write the section there, and the raw figures as FILE.json
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { measureFirstOutput } from './bench-lib/first-output.mjs';
import { firstOutputReport } from './bench-lib/first-output-report.mjs';

if (process.getuid?.() !== 0) {
  console.error('bench-up: builds network namespaces and needs root');
  process.exit(1);
}
const { Lab } = await import('../dist/lab/index.js');
const SMOKE = process.env.BENCH_SMOKE === '1';
const rounds = SMOKE ? 1 : Number(process.env.ROUNDS ?? 7);
const clients = (process.env.SSH_CLIENTS ?? 'ssh2,openssh').split(',');
const bastionCounts = (process.env.BASTIONS ?? '1,2').split(',').map(Number);
const builds = [{ name: 'new', moshctl: fileURLToPath(new URL('../bin/moshctl.js', import.meta.url)) }];
if (process.env.BENCH_OLD) builds.push({ name: 'old', moshctl: process.env.BENCH_OLD });
const log = (s) => console.error(`bench-up: ${s}`);
const started = Date.now();
const rows = [];
for (const bastions of bastionCounts) {
  for (const sshClient of clients) {
    log(`lab: ${bastions} bastion(s), ssh_client ${sshClient}`);
    const lab = await Lab.create({ bastions, sshClient });
    try {
      rows.push(
        await measureFirstOutput(lab, {
          bastions,
          sshClient,
          rounds,
          builds,
          smoke: SMOKE,
          log,
        }),
      );
    } finally {
      await lab.destroy();
    }
  }
}
const labels = process.env.BENCH_OLD ? { new: 'moshctl up (new)', old: 'moshctl up (old)' } : {};
const { lines, whys } = firstOutputReport(rows, { builds: builds.map((b) => b.name), rounds, labels });
const text = [...lines, ...(whys.length ? ['### Missed goals', '', ...whys, ''] : [])].join('\n');
if (process.env.BENCH_OUT) {
  writeFileSync(process.env.BENCH_OUT, `${text}\n`);
  writeFileSync(`${process.env.BENCH_OUT}.json`, JSON.stringify(rows, null, 2));
}
console.log(text);
console.error(`bench-up: ${((Date.now() - started) / 1000).toFixed(0)} s`);

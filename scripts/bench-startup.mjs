// moshctl's own start alone, without the lab or root: the rows of section 5 of
// `npm run bench` (scripts/bench-lib/cold-start.mjs) but the lab's and the big
// inventory's, each next to `node -e 0` run in turn with it. Needs `npm run build`
// first. Prints a table; not a test.
//   RUNS=N   runs of each command (default 21)
import { fileURLToPath } from 'node:url';
import { coldGoal, measureColdStart } from './bench-lib/cold-start.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env.RUNS ?? 21);
const rows = measureColdStart({
  root,
  moshctl: fileURLToPath(new URL('../bin/moshctl.js', import.meta.url)),
  runs,
  log: (s) => console.error(s),
});
console.log(
  `medians of ${runs} runs, each after a node -e 0; ratio: median of each run over the node -e 0 before it\n`,
);
console.log('| command | median | node -e 0 | ratio | above node -e 0 | goal |');
console.log('|---|---:|---:|---:|---:|---|');
for (const r of rows) {
  const goal = coldGoal(r.label);
  const verdict = goal === undefined ? '' : r.ratio <= goal ? `met (≤ ${goal}×)` : `missed (≤ ${goal}×)`;
  console.log(
    `| ${r.label} | ${r.ms.toFixed(1)} ms | ${r.base.toFixed(1)} ms | ${r.ratio.toFixed(2)}× | ${(r.ms - r.base).toFixed(1)} ms | ${verdict} |`,
  );
}

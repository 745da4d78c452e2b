// Cold start of `moshctl validate` against a bare `node -e 0`, run alternately
// so both see the same machine noise. Prints medians and their ratio; not a test.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const runs = Number(process.env.RUNS ?? 21);
const time = (args) => {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = [];
const cli = [];
for (let i = 0; i < runs; i++) {
  base.push(time(['-e', '0']));
  cli.push(time(['bin/moshctl.js', '-f', 'moshproxy.yaml', 'validate']));
}
const b = median(base);
const c = median(cli);
console.log(`node -e 0:         median ${b.toFixed(1)} ms over ${runs} runs`);
console.log(`moshctl validate:  median ${c.toFixed(1)} ms over ${runs} runs`);
console.log(`ratio: ${(c / b).toFixed(2)}x node's own start; moshctl's share ${(c - b).toFixed(1)} ms`);

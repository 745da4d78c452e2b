// The report's section on port forwards (scripts/bench-lib/forwards.mjs measures):
// a table of throughput and latency, one of recovery after a roam, with ratios
// against ssh -J -L of the same run, the goals, and why a goal was missed.
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const f0 = (x) => x.toFixed(0);
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

/** The report's section on forwards, as markdown lines (one table row per lab measured). */
export function forwardsReport(rows, { section = 9 } = {}) {
  const L = [];
  const p = (s = '') => L.push(s);
  const first = rows[0];
  p(`## ${section}. Port forwards`);
  p();
  if (!first) {
    p('Not measured.');
    return L;
  }
  const mib = first.bytes / 1048576;
  p(
    `\`moshctl up target -L 127.0.0.1:P:127.0.0.1:SINK\` (one bastion) next to \`ssh -J bastion -N -L …\` of the same path in the same lab, leading to a TCP sink and an echo on the target's loopback (scripts/bench-lib/tcp-bench-server.mjs); the client side runs in the client namespace (tcp-load.mjs). Throughput: ${mib} MiB sent through the forward until the sink counted them (medians of ${first.rounds} alternating rounds). Latency: ${first.n} round trips of 64 bytes, one in flight, on one connection. Goal: throughput ≥ 0.8× of ssh -J.`,
  );
  p();
  p(
    '| ssh_client | ssh -J -L MiB/s | moshctl -L MiB/s | ratio | goal | ssh -J p50 / p99 | moshctl p50 / p99 | ratio p50 / p99 |',
  );
  p('|---|---:|---:|---:|---|---:|---:|---:|');
  for (const r of rows) {
    const b = median(r.base.mibs);
    const bl = r.base.latency;
    if (r.moshctl.unavailable) {
      p(
        `| ${r.sshClient} | ${b.toFixed(1)} | not available | | | ${f0(bl.p50)} / ${f0(bl.p99)} µs | not available | |`,
      );
      continue;
    }
    const m = median(r.moshctl.mibs);
    const ml = r.moshctl.latency;
    const met = m / b >= 0.8;
    p(
      `| ${r.sshClient} | ${b.toFixed(1)} | ${m.toFixed(1)} | ${ratio(m, b)} | ${met ? 'met (≥ 0.8×)' : '**missed**'} | ${f0(bl.p50)} / ${f0(bl.p99)} µs | ${f0(ml.p50)} / ${f0(ml.p99)} µs | ${ratio(ml.p50, bl.p50)} / ${ratio(ml.p99, bl.p99)} |`,
    );
  }
  p();
  p(
    `Recovery after a client address change: the time from the change to the first connection through the forward that echoes (a new connection tried every 50 ms, earlier ones left waiting). moshctl keeps its forward and re-attaches it to the new chain; \`ssh -J -L\` dies with the old address, so its figure is a new \`ssh -J -L\` started at once, as a user would. Medians of ${first.rounds} alternating rounds. Goal: ≤ 1.5 s.`,
  );
  p();
  p('| ssh_client | moshctl -L: median | min | max | goal | new ssh -J -L: median | ratio |');
  p('|---|---:|---:|---:|---|---:|---:|');
  for (const r of rows) {
    const b = r.base.roam.length ? median(r.base.roam) : NaN;
    if (r.moshctl.unavailable || r.moshctl.roam.length === 0) {
      p(`| ${r.sshClient} | not available | | | | ${f0(b)} ms | |`);
      continue;
    }
    const m = median(r.moshctl.roam);
    p(
      `| ${r.sshClient} | ${f0(m)} ms | ${f0(Math.min(...r.moshctl.roam))} ms | ${f0(Math.max(...r.moshctl.roam))} ms | ${m <= 1500 ? 'met (≤ 1.5 s)' : '**missed**'} | ${f0(b)} ms | ${ratio(m, b)} |`,
    );
  }
  const why = [...new Set(rows.map((r) => r.moshctl.unavailable).filter(Boolean))];
  if (why.length) {
    p();
    for (const w of why) p(`moshctl's side not available in this run: ${w}`);
  }
  for (const r of rows) for (const problem of r.problems) p(`- Problem: ${problem}`);
  p();
  return L;
}

/** "Why … misses" lines for the report's list of missed goals (none while moshctl's side is not available). */
export function forwardsMissed(rows) {
  const whys = [];
  for (const r of rows) {
    if (r.moshctl.unavailable) continue;
    const t = median(r.moshctl.mibs) / median(r.base.mibs);
    if (t < 0.8)
      whys.push(
        `- **Why forward throughput misses (${r.sshClient}, ${t.toFixed(2)}× vs 0.8× of ssh -J -L):** _to be explained_.`,
      );
    const roam = r.moshctl.roam.length ? median(r.moshctl.roam) : Infinity;
    if (roam > 1500)
      whys.push(
        `- **Why forward recovery after a roam misses (${r.sshClient}, ${Number.isFinite(roam) ? `${roam.toFixed(0)} ms` : 'never'} vs 1.5 s):** _to be explained_.`,
      );
  }
  return whys;
}

/** One line for the smoke run's summary. */
export function forwardsSummary(rows) {
  return rows
    .map((r) => {
      if (r.moshctl.unavailable) return `${r.sshClient} moshctl -L not available`;
      const t = median(r.moshctl.mibs) / median(r.base.mibs);
      const roam = r.moshctl.roam.length ? `${f0(median(r.moshctl.roam))} ms` : 'never';
      return `${r.sshClient} ${t.toFixed(2)}× throughput, back ${roam} after a roam`;
    })
    .join(', ');
}

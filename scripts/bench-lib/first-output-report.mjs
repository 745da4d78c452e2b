// The report's section 1 (scripts/bench-lib/first-output.mjs measures): first
// output and end to end of `moshctl up` against `ssh -J` from the same rounds,
// with the goals, mosh's own share, moshctl's, and the floor where a goal is
// out of reach. With a second build (BENCH_OLD), its figures sit beside.
import { SCRIPTS, remoteOf } from './first-output.mjs';

const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : '–');
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;
export const goal = (r, limit) =>
  r <= limit
    ? `met (≤ ${limit}×)`
    : `**missed** by ${(r - limit).toFixed(2)}× (${((r / limit - 1) * 100).toFixed(0)} % over ${limit}×)`;

export const GOALS = { first: 1.3, total: 1.5 };

/**
 * The logins no moshctl can do faster: OpenSSH's (`ssh -J … -N`); with ssh2,
 * moshctl's own connect step where that is faster still (ssh2 logs in by
 * curve25519, OpenSSH 9 by sntrup761x25519, which costs more CPU per hop).
 */
export const loginsOf = (r, build) =>
  r.sshClient === 'ssh2'
    ? Math.min(r.med.parts.sshLogins, r.med.parts[`connect.${build}`] ?? Infinity)
    : r.med.parts.sshLogins;

/** The floor of moshctl up's first output and end to end (command exiting at once), from its measured parts. */
export function floorOf(r, build = 'new') {
  const f = r.med.parts;
  const mosh = r.med['mosh.exit'];
  const before = f.node + loginsOf(r, build) + f.loginShell + f.moshServer;
  return { first: before + mosh.first, total: before + mosh.total };
}

/**
 * Section 1 as markdown lines. `rows`: measureFirstOutput's results; `builds`:
 * the names measured, the first being the one the goals are about; `rounds`.
 */
export function firstOutputReport(rows, { builds, rounds, labels = {} }) {
  const L = [];
  const p = (s = '') => L.push(s);
  const whys = [];
  const [main, ...others] = builds;
  const label = (b) => labels[b] ?? (b === main ? 'moshctl up' : `moshctl up (${b})`);
  p('## 1. `moshctl up` against `ssh -J`');
  p();
  p(
    `Two remote commands on the target, each in a terminal (script(1)): \`${remoteOf(SCRIPTS.exit)}\`, which exits at once, and \`${remoteOf(SCRIPTS.sleep)}\`. Medians of ${rounds} alternating rounds (\`ssh -J\`, then ${builds.map((b) => `\`${label(b)}\``).join(', ')}, then mosh alone, for each command) after one warm-up each.`,
  );
  p(
    "First output: until `FIRST-FRAME` appears (for moshctl, in mosh-client's first frame). End to end: until the command's terminal closes (for moshctl, with teardown of server and relays).",
  );
  p(
    `Goals: first output ≤ ${GOALS.first}×, end to end ≤ ${GOALS.total}× (with the command that exits at once).`,
  );
  p();
  const extra = (cols) => others.flatMap((b) => cols(b));
  const head = [
    'bastions',
    'ssh_client',
    'first output: ssh -J',
    label(main),
    'ratio',
    'goal',
    ...extra((b) => [label(b), 'ratio']),
    'end to end: ssh -J',
    label(main),
    'ratio',
    'goal',
    ...extra((b) => [label(b), 'ratio']),
  ];
  p(`| ${head.join(' | ')} |`);
  p(`|${head.map((_, i) => (i < 2 || head[i] === 'goal' ? '---' : '---:')).join('|')}|`);
  for (const r of rows) {
    const m = r.med;
    const ssh = m['ssh.exit'];
    const up = m[`up.${main}.exit`];
    const rf = up.first / ssh.first;
    const rt = up.total / ssh.total;
    p(
      `| ${[
        r.bastions,
        r.sshClient,
        ms(ssh.first),
        ms(up.first),
        ratio(up.first, ssh.first),
        goal(rf, GOALS.first),
        ...extra((b) => [ms(m[`up.${b}.exit`].first), ratio(m[`up.${b}.exit`].first, ssh.first)]),
        ms(ssh.total),
        ms(up.total),
        ratio(up.total, ssh.total),
        goal(rt, GOALS.total),
        ...extra((b) => [ms(m[`up.${b}.exit`].total), ratio(m[`up.${b}.exit`].total, ssh.total)]),
      ].join(' | ')} |`,
    );
    const floor = floorOf(r, main);
    const where = `(${r.bastions} bastion(s), ${r.sshClient}`;
    if (rf > GOALS.first)
      whys.push(
        `- **Why first output misses ${where}, ${ratio(up.first, ssh.first)} vs ${GOALS.first}×, ${ms(up.first - GOALS.first * ssh.first)} over):** its floor (table below) is ${ms(floor.first)}, ${ratio(floor.first, ssh.first)} of \`ssh -J\`${floor.first / ssh.first > GOALS.first ? ', itself above the goal: out of reach' : `; moshctl's part above the floor is ${ms(up.first - floor.first)}`}.`,
      );
    if (rt > GOALS.total)
      whys.push(
        `- **Why end to end misses ${where}, ${ratio(up.total, ssh.total)} vs ${GOALS.total}×, ${ms(up.total - GOALS.total * ssh.total)} over):** its floor is ${ms(floor.total)}, ${ratio(floor.total, ssh.total)} of \`ssh -J\`${floor.total / ssh.total > GOALS.total ? ', itself above the goal: out of reach' : `; moshctl's part above the floor is ${ms(up.total - floor.total)}`}.`,
      );
  }
  p();
  p(
    `The bench's earlier command, \`${remoteOf(SCRIPTS.sleep)}\`, from the same rounds: the 0.3 s both sides sleep makes end to end look closer than it is.`,
  );
  p();
  const head2 = [
    'bastions',
    'ssh_client',
    'first output: ssh -J',
    label(main),
    'ratio',
    ...extra((b) => [label(b), 'ratio']),
    'end to end: ssh -J',
    label(main),
    'ratio',
    ...extra((b) => [label(b), 'ratio']),
  ];
  p(`| ${head2.join(' | ')} |`);
  p(`|${head2.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`);
  for (const r of rows) {
    const m = r.med;
    const ssh = m['ssh.sleep'];
    const up = m[`up.${main}.sleep`];
    p(
      `| ${[
        r.bastions,
        r.sshClient,
        ms(ssh.first),
        ms(up.first),
        ratio(up.first, ssh.first),
        ...extra((b) => [ms(m[`up.${b}.sleep`].first), ratio(m[`up.${b}.sleep`].first, ssh.first)]),
        ms(ssh.total),
        ms(up.total),
        ratio(up.total, ssh.total),
        ...extra((b) => [ms(m[`up.${b}.sleep`].total), ratio(m[`up.${b}.sleep`].total, ssh.total)]),
      ].join(' | ')} |`,
    );
  }
  p();
  p(
    `mosh by itself, in the same rounds: \`mosh-client\` started on the target against a \`mosh-server new -- ${remoteOf(SCRIPTS.exit)}\` already running there (loopback: no ssh, no relay, no network), until \`FIRST-FRAME\` shows. That much of \`${label(main)}\`'s first output is mosh's own; the rest is moshctl's part (its start, logins, mosh-server and relays started, wired), next to \`ssh -J\`'s whole first output.`,
  );
  p();
  p(
    '| bastions | ssh_client | mosh alone: first frame | of ssh -J | moshctl up minus mosh alone | of ssh -J |',
  );
  p('|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const m = r.med;
    const ssh = m['ssh.exit'].first;
    const up = m[`up.${main}.exit`].first;
    const mosh = m['mosh.exit'].first;
    p(
      `| ${r.bastions} | ${r.sshClient} | ${ms(mosh)} | ${ratio(mosh, ssh)} | ${ms(up - mosh)} | ${ratio(up - mosh, ssh)} |`,
    );
  }
  p();
  p(
    `The floor: what moshctl's first output cannot go below, as a sum of parts, each sampled once a round in the same rounds. Node's own start (\`node -e 0\`); logging in to every hop: OpenSSH's (\`ssh -J … -N\` until the target's \`Authenticated to\` line), or with ssh2 its own \`connect\` step (\`MOSHCTL_TIMING\`) where that is less; the target's login shell, which sshd runs every remote command with (the lab's remote user is root, /bin/bash, whose ~/.bashrc runs \`pyenv init\`: \`bash -c true\` with an ssh session's variables, less \`/bin/sh -c true\`); \`mosh-server new\` until it has printed its port and key; and mosh's own first frame (mosh alone, above). \`ssh -J\` pays the logins and one login shell too, but not the rest. End to end adds mosh alone's exit instead of its first frame. The relays are not in it: they start while later hops log in, on other hosts (in this lab every host shares the machine's CPUs).`,
  );
  p();
  p(
    '| bastions | ssh_client | node -e 0 | logins: ssh -J -N | moshctl connect | login shell per exec | mosh-server new | mosh alone: first frame / exit | floor: first output | of ssh -J | floor: end to end | of ssh -J |',
  );
  p('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const f = r.med.parts;
    const m = r.med;
    const fl = floorOf(r, main);
    p(
      `| ${r.bastions} | ${r.sshClient} | ${ms(f.node)} | ${ms(f.sshLogins)} | ${ms(f[`connect.${main}`])} | ${ms(f.loginShell)} | ${ms(f.moshServer)} | ${ms(m['mosh.exit'].first)} / ${ms(m['mosh.exit'].total)} | ${ms(fl.first)} | ${ratio(fl.first, m['ssh.exit'].first)} | ${ms(fl.total)} | ${ratio(fl.total, m['ssh.exit'].total)} |`,
    );
  }
  p();
  p(
    `Per-step timings of one \`${label(main)}\` run per configuration (\`MOSHCTL_TIMING=1\`, stderr; the first round's, command \`${remoteOf(SCRIPTS.exit)}\`; \`start\` is everything before the first side effect, the \`at\` and \`from\` times count from its end):`,
  );
  p();
  for (const r of rows) {
    p(`${r.bastions} bastion(s), ${r.sshClient}:`);
    p();
    p('```');
    const lines = r.timing[main]?.[0] ?? [];
    for (const l of lines.length ? lines : ['(no timing lines)']) p(l);
    p('```');
    p();
  }
  return { lines: L, whys };
}

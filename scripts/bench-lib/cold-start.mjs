// moshctl's own start (section 5 of `npm run bench`, and `npm run bench:startup`
// alone): each command next to `node -e 0`, the two run in turn, so both see
// the same machine. A row's ratio is the median, over its runs, of the run's
// time over the `node -e 0` run just before it.
//
// `plan` runs `ssh -G` for every hop, as it would for a user: a host of the
// repository's moshproxy.yaml (dev-box, two hops), and hosts only an
// ssh_config knows, two and three hops deep (ProxyJump chains, read one hop
// after another). The ssh_config is a file of its own (MOSHCTL_SSH_CONFIG,
// which moshctl gives ssh as -F): OpenSSH finds ~/.ssh/config from the passwd
// entry, not $HOME, so a bench cannot put one there without touching the
// user's own.
//
// The "floor" rows run, in Node and with nothing of moshctl, the `ssh -G` each
// plan row needs: what moshctl cannot shorten.
//
// Runs after the first use V8's code cache (bin/code-cache.js): a warm-up run
// of each command makes it, in a cache folder of the bench's own, and the
// "no code cache" row shows a start without one (a first run ever, or a home
// where nothing can be written).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A personal ~/.ssh/config as people write them: defaults, a bastion, hosts behind it, one behind those. */
const SSH_CONFIG = `Host *
  ServerAliveInterval 30
  IdentitiesOnly yes
  IdentityFile ~/.ssh/id_ed25519

Host jump
  HostName bastion.corp.example.com
  User alice
  Port 2222

Host app
  HostName 10.20.0.15
  User deploy
  ProxyJump jump

Host db
  HostName 10.30.0.7
  User postgres
  ProxyJump app

Host git
  HostName git.example.com
  User git
`;

/**
 * What `plan` cannot shorten: Node starting, loading node:child_process and
 * running the `ssh -G` a route needs (argv[1]: groups run one after another,
 * the runs of a group side by side), as moshctl does, with nothing of moshctl.
 */
const SSH_G_ONLY = [
  "const { execFile } = require('node:child_process');",
  'const groups = JSON.parse(process.argv[1]);',
  'const next = (i) => {',
  '  if (i >= groups.length) return;',
  '  let left = groups[i].length;',
  "  for (const args of groups[i]) execFile('ssh', ['-F', process.env.MOSHCTL_SSH_CONFIG, '-G', ...args], (e) => {",
  '    if (e) throw e;',
  '    if (--left === 0) next(i + 1);',
  '  });',
  '};',
  'next(0);',
].join('\n');

function timeOne(argv, { cwd, env }) {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0], argv.slice(1), { cwd, env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${r.stdout}${r.stderr}`);
  return { ms, out: r.stdout };
}

/**
 * The rows: `label`, the moshctl arguments, and what its output must hold
 * (a row that fails or prints something else stops the bench, rather than
 * time an error message).
 */
function rowsFor({ root, labConfig, inventory }) {
  const repoConfig = join(root, 'moshproxy.yaml');
  const rows = [
    { label: 'moshctl --version', args: ['--version'], expect: /^moshctl \d/ },
    labConfig && {
      label: 'moshctl validate (lab config)',
      args: ['-f', labConfig, 'validate'],
      expect: /^ok$/m,
    },
    {
      label: "moshctl validate (the repository's moshproxy.yaml)",
      args: ['-f', repoConfig, 'validate'],
      expect: /^ok$/m,
    },
    {
      label: 'moshctl plan dev-box (moshproxy.yaml, 2 hops)',
      args: ['-f', repoConfig, 'plan', 'dev-box'],
      expect: /local → bastion → dev-box/,
    },
    {
      label: 'moshctl plan app (ssh_config only, 2 hops)',
      args: ['plan', 'app'],
      expect: /local → jump → app/,
    },
    {
      label: 'moshctl plan db (ssh_config only, 3 hops)',
      args: ['plan', 'db'],
      expect: /local → jump → app → db/,
    },
    {
      label: "floor of plan dev-box: node and dev-box's 2 ssh -G, side by side",
      argv: [
        process.execPath,
        '-e',
        SSH_G_ONLY,
        JSON.stringify([
          [
            ['-p', '22', '--', 'bastion.example.com'],
            ['--', '10.0.3.12'],
          ],
        ]),
      ],
      expect: /^$/,
    },
    {
      label: "floor of plan app: node and app's 2 ssh -G, one after the other",
      argv: [process.execPath, '-e', SSH_G_ONLY, JSON.stringify([[['--', 'app']], [['--', 'jump']]])],
      expect: /^$/,
    },
    {
      label: "floor of plan db: node and db's 3 ssh -G, one after another",
      argv: [
        process.execPath,
        '-e',
        SSH_G_ONLY,
        JSON.stringify([[['--', 'db']], [['--', 'app']], [['--', 'jump']]]),
      ],
      expect: /^$/,
    },
    {
      label: 'moshctl plan dev-box (moshproxy.yaml, 2 hops), no code cache',
      args: ['-f', repoConfig, 'plan', 'dev-box'],
      expect: /local → bastion → dev-box/,
      // A relative path is no cache folder: nothing is read or written (bin/code-cache.js).
      env: { XDG_CACHE_HOME: 'no-cache' },
    },
  ];
  if (inventory) {
    rows.push(
      {
        label: `moshctl validate (${inventory.label} hosts)`,
        args: ['-f', inventory.file, 'validate'],
        expect: /^ok$/m,
      },
      {
        label: `moshctl plan ${inventory.deep} (${inventory.label} hosts)`,
        args: ['-f', inventory.file, 'plan', inventory.deep],
        expect: new RegExp(`moshctl up ${inventory.deep}:`),
      },
    );
  }
  return rows.filter(Boolean);
}

/**
 * Times every row `runs` times, each run after a `node -e 0`; returns, per
 * row, { label, ms, base, ratio } (medians; ratio run by run). `labConfig` and `inventory`
 * ({ file, label, deep }) add their rows when given.
 */
export function measureColdStart({ root, moshctl, runs, labConfig, inventory, log = () => {} }) {
  const dir = mkdtempSync(join(tmpdir(), 'moshctl-bench-start-'));
  try {
    const sshConfig = join(dir, 'ssh_config');
    writeFileSync(sshConfig, SSH_CONFIG);
    // No moshproxy.yaml in dir or above it (tmpdir): `plan app` is ssh_config's alone.
    const cwd = dir;
    const baseEnv = {
      ...process.env,
      MOSHCTL_SSH_CONFIG: sshConfig,
      XDG_CACHE_HOME: join(dir, 'cache'),
    };
    delete baseEnv.MOSHCTL_FILE;
    delete baseEnv.MOSHCTL_DEBUG;
    const out = [];
    for (const row of rowsFor({ root, labConfig, inventory })) {
      log(`cold start: ${row.label}`);
      const env = { ...baseEnv, ...row.env };
      const argv = row.argv ?? [process.execPath, moshctl, ...row.args];
      const first = timeOne(argv, { cwd, env });
      if (!row.expect.test(first.out))
        throw new Error(`bench: ${row.label} printed, unexpectedly:\n${first.out}`);
      const base = [];
      const ms = [];
      for (let i = 0; i < runs; i++) {
        base.push(timeOne([process.execPath, '-e', '0'], { cwd, env }).ms);
        ms.push(timeOne(argv, { cwd, env }).ms);
      }
      // Run by run: a machine whose speed drifts moves both sides of a pair alike.
      const ratio = median(ms.map((x, i) => x / (base[i] ?? x)));
      out.push({ label: row.label, ms: median(ms), base: median(base), ratio });
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Section 5's goals, by the start of a row's label. */
export const COLD_GOALS = [
  { prefix: 'moshctl --version', limit: 1.1 },
  { prefix: 'moshctl plan dev-box (moshproxy.yaml, 2 hops)', limit: 1.5, exact: true },
  { prefix: 'moshctl plan app', limit: 1.5 },
  { prefix: 'moshctl plan db', limit: 1.5 },
];

/** The goal of a row, if it has one. */
export function coldGoal(label) {
  return COLD_GOALS.find((g) => (g.exact ? label === g.prefix : label.startsWith(g.prefix)))?.limit;
}

/** The floor row of a plan row ("moshctl plan NAME (...)" → "floor of plan NAME: ..."), if there is one. */
export function floorOf(rows, label) {
  const name = /^moshctl plan (\S+) \(/.exec(label)?.[1];
  return name === undefined ? undefined : rows.find((r) => r.label.startsWith(`floor of plan ${name}:`));
}

// The userlands a remote script meets, made on this machine: dash, bash and
// busybox ash with their own tools, and hosts without /proc (BSD, macOS) in a
// mount namespace where /proc is hidden. A BSD `ps` cannot run here, so
// fake-ps.pl stands in for it (and for a busybox ps that still sees the
// processes); everything else is the real program.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));

/** Whether this process may hide /proc in a mount namespace of its own (root, with unshare). */
export const CAN_HIDE_PROC =
  process.getuid?.() === 0 &&
  spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore' }).status === 0;

export interface Userland {
  label: string;
  /** /proc is there (Linux): exact start times, ppid and command lines from it. */
  proc: boolean;
  /** Some way to read a pid's state and command line works (/proc or a ps with -p or a full list). */
  sees: boolean;
  /** Why it cannot run here, or undefined. */
  skip: string | undefined;
  /**
   * Runs a remote command line (`/bin/sh -c '…' …`) as that host's login shell
   * would: its /bin/sh is this userland's shell. `loginForks`: the login shell
   * runs it as a child (fish does) instead of in its own place.
   */
  run(
    command: string,
    opts?: { loginForks?: boolean },
  ): { stdout: string; stderr: string; code: number | null };
}

interface Spec {
  label: string;
  shell: 'dash' | 'bash' | 'busybox';
  /** What the PATH holds: the machine's, busybox applets only, or with a fake ps first. */
  path: 'system' | 'busybox' | 'bsd-ps' | 'busybox-listing-ps';
  proc: boolean;
  sees: boolean;
}

const SPECS: Spec[] = [
  { label: 'dash, procps, /proc', shell: 'dash', path: 'system', proc: true, sees: true },
  { label: 'bash, procps, /proc', shell: 'bash', path: 'system', proc: true, sees: true },
  { label: 'busybox ash and applets only, /proc', shell: 'busybox', path: 'busybox', proc: true, sees: true },
  { label: 'dash, BSD ps (stand-in), no /proc', shell: 'dash', path: 'bsd-ps', proc: false, sees: true },
  {
    label: 'busybox ash, a busybox ps that lists (stand-in), no /proc',
    shell: 'busybox',
    path: 'busybox-listing-ps',
    proc: false,
    sees: true,
  },
  {
    label: 'busybox ash and applets only, no /proc',
    shell: 'busybox',
    path: 'busybox',
    proc: false,
    sees: false,
  },
  { label: 'dash, procps, no /proc', shell: 'dash', path: 'system', proc: false, sees: false },
];

/** The userlands, with their tool folders under a fresh temporary folder; `cleanup()` removes it. */
export function makeUserlands(): { userlands: Userland[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'moshctl-userlands-'));
  chmodSync(dir, 0o755);
  const folders = {
    busybox: join(dir, 'busybox'),
    'busybox-listing-ps': join(dir, 'busybox-listing-ps'),
    'bsd-ps': join(dir, 'bsd-ps'),
  };
  // An executable perl script (#!/usr/bin/perl), linked in as `ps`.
  const fakePs = fileURLToPath(new URL('./fake-ps.pl', import.meta.url));
  if (BUSYBOX) {
    const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
    for (const f of [folders.busybox, folders['busybox-listing-ps']]) {
      mkdirSync(f);
      for (const a of applets) symlinkSync(BUSYBOX, join(f, a));
    }
    rmSync(join(folders['busybox-listing-ps'], 'ps'));
    symlinkSync(fakePs, join(folders['busybox-listing-ps'], 'ps'));
  }
  mkdirSync(folders['bsd-ps']);
  symlinkSync(fakePs, join(folders['bsd-ps'], 'ps'));
  const side = join(dir, 'proc');
  mkdirSync(side);

  const userlands = SPECS.map((spec): Userland => {
    const shell =
      spec.shell === 'busybox'
        ? join(folders.busybox, 'sh')
        : spec.shell === 'bash'
          ? '/bin/bash'
          : '/bin/dash';
    const PATH =
      spec.path === 'system'
        ? (process.env.PATH ?? '/usr/bin:/bin')
        : spec.path === 'bsd-ps'
          ? `${folders['bsd-ps']}:/usr/bin:/bin`
          : folders[spec.path];
    const flavor = spec.path === 'bsd-ps' ? 'bsd' : 'busybox';
    const skip =
      spec.shell === 'busybox' && !BUSYBOX
        ? 'busybox is not installed (scripts/setup.sh installs it)'
        : !spec.proc && !CAN_HIDE_PROC
          ? 'hiding /proc needs root and unshare'
          : undefined;
    return {
      ...spec,
      skip,
      run(command, opts = {}) {
        const cmd =
          (command.startsWith('/bin/sh ') ? `${shell} ${command.slice(8)}` : command) +
          (opts.loginForks ? '; :' : '');
        const env = { ...process.env, PATH, FAKE_PS_FLAVOR: flavor, FAKE_PS_PROC: side };
        const argv = spec.proc
          ? [shell, '-c', cmd]
          : [
              'unshare',
              '-m',
              '--propagation',
              'private',
              '/bin/sh',
              '-c',
              'mount --bind /proc "$1" && mount -t tmpfs moshctl-no-proc /proc && PATH=$2 && shift 2 && exec "$@"',
              'hide-proc',
              side,
              PATH,
              shell,
              '-c',
              cmd,
            ];
        const r = spawnSync(argv[0] ?? '', argv.slice(1), {
          encoding: 'utf8',
          env: spec.proc ? env : { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
          timeout: 20_000,
        });
        return { stdout: r.stdout, stderr: r.stderr, code: r.status };
      },
    };
  });
  return { userlands, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

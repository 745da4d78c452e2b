// Lab hosts unlike this machine, as routers, appliances and small images are:
// a busybox userland (LabOptions.busybox) and Dropbear in place of OpenSSH's
// sshd (LabOptions.dropbear). Both are made of the machine's own programs and
// private mounts that only that host's ssh server and its sessions see
// (mounts.ts), so nothing outside the lab changes.
//
// A busybox host's sessions log in to busybox ash (root's shell is /bin/sh in
// a passwd they see, and /bin/sh is busybox), with a PATH that holds only
// busybox applets and mosh-server; bash, python3, perl, procps' ps, tmux and
// screen are /dev/null there even by absolute path. A Dropbear host runs
// `dropbear -F -E` with the lab's host key (converted) and reads root's
// authorized_keys from a home of the lab's mounted over /root.

import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { hideMounts, type PrivateMount } from './mounts.js';
import { mustRun } from './proc.js';

export const BUSYBOX = '/usr/bin/busybox';
export const DROPBEAR = '/usr/sbin/dropbear';
export const MOSH_SERVER = '/usr/bin/mosh-server';

/** Programs a busybox host must not have, by the machine's paths (those that exist are hidden). */
const NOT_ON_BUSYBOX = ['bash', 'python3', 'perl', 'ps', 'pgrep', 'tmux', 'screen', 'zsh', 'fish'].map(
  (p) => `/usr/bin/${p}`,
);

export interface BusyboxHost {
  /** The only folder on the sessions' PATH: a link per busybox applet, and mosh-server. */
  binDir: string;
  mounts: PrivateMount[];
}

/** Makes a busybox host's folder and passwd under <labDir>/busybox/<host>/ and returns what to mount. */
export function makeBusyboxHost(labDir: string, host: string): BusyboxHost {
  if (!existsSync(BUSYBOX))
    throw new Error(`busybox: ${BUSYBOX} is not installed (scripts/setup.sh installs it)`);
  const base = join(labDir, 'busybox');
  const dir = join(base, host);
  const binDir = join(dir, 'bin');
  for (const d of [base, dir, binDir]) {
    mkdirSync(d, { recursive: true, mode: 0o755 });
    chmodSync(d, 0o755); // sessions of any user read it
  }
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) symlinkSync(BUSYBOX, join(binDir, a));
  symlinkSync(MOSH_SERVER, join(binDir, 'mosh-server'));
  // root logs in to /bin/sh, which is busybox ash there.
  const passwd = join(dir, 'passwd');
  const lines = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => (l.startsWith('root:') ? l.replace(/:[^:]*$/, ':/bin/sh') : l));
  writeFileSync(passwd, lines.join('\n'), { mode: 0o644 });
  const hidden = [...new Set(NOT_ON_BUSYBOX.filter((p) => existsSync(p)).map((p) => realpathSync(p)))];
  return {
    binDir,
    mounts: [
      // /bin/sh is a link (to dash on Debian): the mount covers its target.
      { source: BUSYBOX, target: realpathSync('/bin/sh') },
      { source: passwd, target: '/etc/passwd' },
      ...hideMounts(hidden),
    ],
  };
}

export interface DropbearHost {
  argv: string[];
  mounts: PrivateMount[];
  /** The pid file Dropbear writes (in the lab dir, not /var/run). */
  pidFile: string;
}

/**
 * Dropbear for one host on `listen` port 22 with the host key the lab made for
 * it (OpenSSH format, converted, so known_hosts stays as it is), root's
 * authorized_keys from `authorizedKeys`.
 */
export async function makeDropbearHost(
  labDir: string,
  host: string,
  hostKey: string,
  authorizedKeys: string,
  listen: readonly string[],
): Promise<DropbearHost> {
  if (!existsSync(DROPBEAR))
    throw new Error(
      `dropbear: ${DROPBEAR} is not installed (Debian's dropbear-bin; scripts/setup.sh installs it)`,
    );
  if (listen.length === 0 || listen.length > 10)
    throw new Error(`dropbear: ${listen.length} listen addresses`);
  const dir = join(labDir, 'dropbear', host);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const key = join(dir, 'dropbear_ed25519_host_key');
  await mustRun(['dropbearconvert', 'openssh', 'dropbear', hostKey, key]);
  // Dropbear reads ~/.ssh/authorized_keys only, and checks that nobody else may write on the way.
  const home = join(dir, 'root-home');
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o700);
  copyFileSync(authorizedKeys, join(home, '.ssh', 'authorized_keys'));
  chmodSync(join(home, '.ssh', 'authorized_keys'), 0o600);
  const pidFile = join(dir, 'dropbear.pid');
  return {
    argv: [DROPBEAR, '-F', '-E', '-s', '-P', pidFile, '-r', key, ...listen.flatMap((a) => ['-p', `${a}:22`])],
    mounts: [{ source: home, target: '/root' }],
    pidFile,
  };
}

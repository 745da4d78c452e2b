// Local users for the lab, made by scripts/setup.sh (the same list is there).
// A remote command is run by the login shell of the user it logs in as, so
// tests log in as users with bash, dash, zsh and fish; and moshctl normally
// runs as an ordinary user, not root, so tests can run it as mctl-client.
// A machine without them still gets a lab: the lab says which are missing and
// the tests that need them skip with that reason.

import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { copyKeyWithCert } from './certs.js';

/** The remote login users of the tests and the login shell setup.sh gives each. */
export const LOGIN_USERS = [
  { name: 'mctl-bash', shell: '/bin/bash' },
  { name: 'mctl-dash', shell: '/bin/sh' },
  { name: 'mctl-zsh', shell: '/usr/bin/zsh' },
  { name: 'mctl-fish', shell: '/usr/bin/fish' },
] as const;

/** The ordinary local user that runs moshctl (and ssh) in the client namespace. */
export const CLIENT_USER = { name: 'mctl-client', shell: '/bin/bash' } as const;

export interface LabUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** The login shell in the passwd entry (what sshd runs remote commands with). */
  shell: string;
}

export interface ClientUserFiles {
  /** A 0700 dir in the lab dir owned by the client user; its files are 0600 and theirs too. */
  dir: string;
  /**
   * The client user's home in this lab, 0700 and its own, empty at first: every
   * command the lab runs as that user sees it over the user's passwd home (a
   * bind mount of its own), so what a test puts in ~/.ssh is seen by this lab
   * alone, not by labs of other test files running at the same time.
   */
  home: string;
  /** Copy of the lab's client key (authorized for every user on every lab host). */
  keyFile: string;
  /** Copy of the lab's plain known_hosts. */
  knownHostsFile: string;
  /** Copy of the lab's cert-only key, with its -cert.pub beside it. */
  certOnlyKeyFile: string;
  /** Copy of known_hosts.ca (only the host CA). */
  caKnownHostsFile: string;
}

/** The passwd entry of `name`, or undefined when there is no such user. */
export function lookupUser(name: string): LabUser | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const f = r.stdout.trim().split(':');
  if (f.length < 7) return undefined;
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' };
}

export interface LabUsers {
  /** The login users that exist, in LOGIN_USERS order. */
  login: LabUser[];
  client: LabUser | undefined;
  /** Why some users are missing, or undefined when all exist. */
  missing: string | undefined;
}

export function findLabUsers(): LabUsers {
  const found = new Map([...LOGIN_USERS, CLIENT_USER].map((u) => [u.name, lookupUser(u.name)]));
  const login = LOGIN_USERS.map((u) => found.get(u.name)).filter((u): u is LabUser => u !== undefined);
  const absent = [...found].filter(([, u]) => u === undefined).map(([name]) => name);
  const missing =
    absent.length > 0
      ? `test users missing: ${absent.join(', ')} (run ./scripts/setup.sh as root to add them)`
      : undefined;
  return { login, client: found.get(CLIENT_USER.name), missing };
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// $0: the lab's home for the user, $1: the passwd home it covers, then the command.
const BIND_HOME = 'mount --bind "$0" "$1" && shift && exec "$@"';

/**
 * argv prefix-and-command running `argv` as `user` with a clean environment,
 * as a login would give it (HOME, USER, LOGNAME, PATH, SHELL, LANG) plus `env`.
 * With `home`, that folder is bind-mounted over the user's passwd home first,
 * in a mount namespace of the command's own (as root, before setpriv).
 * unshare, sh and setpriv exec in place, so a pid taken before it is the command's own.
 */
export function asUserArgv(
  user: LabUser,
  argv: readonly string[],
  env: Record<string, string> = {},
  home?: string,
): string[] {
  const vars: Record<string, string> = {
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    SHELL: user.shell,
    LANG: 'C.UTF-8',
    ...env,
  };
  for (const name of Object.keys(vars)) if (!ENV_NAME.test(name)) throw new Error(`bad env name "${name}"`);
  // env(1) would take a first word with "=" for one more variable, not the command.
  if (argv[0] === undefined || argv[0].includes('=')) throw new Error(`bad command "${argv[0] ?? ''}"`);
  const ownHome = home
    ? ['unshare', '-m', '--propagation', 'private', 'sh', '-c', BIND_HOME, home, user.home]
    : [];
  return [
    ...ownHome,
    'setpriv',
    `--reuid=${user.uid}`,
    `--regid=${user.gid}`,
    '--init-groups',
    '--',
    'env',
    '-i',
    ...Object.entries(vars).map(([k, v]) => `${k}=${v}`),
    ...argv,
  ];
}

export function clientUserFilePaths(labDir: string): ClientUserFiles {
  const dir = join(labDir, 'client-user');
  return {
    dir,
    home: join(labDir, 'client-home'),
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    certOnlyKeyFile: join(dir, 'id_cert_only'),
    caKnownHostsFile: join(dir, 'known_hosts.ca'),
  };
}

/** Gives the client user its own copies of the lab's keys and known_hosts (root's are 0600). */
export function writeClientUserFiles(
  files: ClientUserFiles,
  user: LabUser,
  from: { keyFile: string; knownHostsFile: string; certOnlyKeyFile: string; caKnownHostsFile: string },
): void {
  for (const d of [files.dir, files.home]) {
    mkdirSync(d, { mode: 0o700 });
    chownSync(d, user.uid, user.gid);
  }
  copyKeyWithCert(from.keyFile, files.keyFile);
  copyKeyWithCert(from.certOnlyKeyFile, files.certOnlyKeyFile);
  writeUserFile(files, user, 'known_hosts', readFileSync(from.knownHostsFile, 'utf8'));
  writeUserFile(files, user, 'known_hosts.ca', readFileSync(from.caKnownHostsFile, 'utf8'));
  for (const f of [files.keyFile, files.certOnlyKeyFile]) {
    for (const p of [f, `${f}.pub`, `${f}-cert.pub`]) chownIfExists(p, user);
  }
}

/** Writes `name` in the client user's dir, 0600 and owned by that user; returns its path. */
export function writeUserFile(files: ClientUserFiles, user: LabUser, name: string, text: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new Error(`bad file name "${name}"`);
  const path = join(files.dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600); // `mode` applies only to a new file
  chownSync(path, user.uid, user.gid);
  return path;
}

function chownIfExists(path: string, user: LabUser): void {
  try {
    chownSync(path, user.uid, user.gid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

// Per-host changes to the file system that only one lab host's sshd and its
// sessions see: sshd is started in a private mount namespace where lab files
// are bind-mounted over system paths. Two uses: a PAM config for sshd that
// asks for a one-time code (keyboard-interactive, like Duo), and /dev/null
// over a program so that host looks as if it were not installed there. Tests
// may also put lab files of their own there (LabOptions.mounts): a stand-in
// program, a noisy ~/.bashrc, an empty locale folder.

import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { SSHD } from './sshd.js';
import type { LabMount } from './types.js';

export interface PrivateMount {
  /** What is mounted (a lab file, or /dev/null to hide a program). */
  source: string;
  /** The system path it covers, for that host only. */
  target: string;
}

/** POSIX-shell single quoting. */
export function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * argv for sshd in the foreground, logging to stderr. With mounts it runs in
 * its own mount namespace (private, so nothing reaches the machine's mounts);
 * `unshare` without --fork and `exec` keep one process all the way, so the pid
 * the lab tracks is sshd's. A failed mount ends the chain with its message in the log.
 */
export function sshdArgv(config: string, mounts: readonly PrivateMount[] = []): string[] {
  return privateArgv([SSHD, '-D', '-e', '-f', config], mounts);
}

/** argv running `server` (an ssh server in the foreground) with `mounts` that only it and its children see. */
export function privateArgv(server: readonly string[], mounts: readonly PrivateMount[]): string[] {
  if (mounts.length === 0) return [...server];
  const steps = mounts.map((m) => `mount --bind ${shQuote(m.source)} ${shQuote(m.target)}`);
  const script = [...steps, `exec ${server.map(shQuote).join(' ')}`].join(' && ');
  return ['unshare', '-m', '--propagation', 'private', 'sh', '-c', script];
}

/** Mounts that hide programs: /dev/null cannot be executed, so running one fails. */
export function hideMounts(paths: readonly string[]): PrivateMount[] {
  return paths.map((p) => {
    if (!isAbsolute(p) || normalize(p) !== p) throw new Error(`hide: "${p}" is not a plain absolute path`);
    if (!existsSync(p)) throw new Error(`hide: ${p} does not exist`);
    return { source: '/dev/null', target: p };
  });
}

/** Six random digits: the code a user types at the prompt. */
export function newOtpCode(): string {
  return String(randomInt(0, 1_000_000)).padStart(6, '0');
}

/**
 * The PAM side of keyboard-interactive: pam_exec with expose_authtok prompts
 * "Password: " and hands the typed text to a script on stdin, which accepts
 * exactly `code`. No other module asks anything, so the session is "a key
 * (sshd's AuthenticationMethods) and then a code", as with Duo. Returns the
 * PAM config to mount over /etc/pam.d/sshd.
 */
export function writeOtpFiles(labDir: string, code: string): string {
  if (!/^\d{6}$/.test(code)) throw new Error('the one-time code must be six digits');
  const dir = join(labDir, 'otp');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const codeFile = join(dir, 'code');
  writeFileSync(codeFile, code + '\n', { mode: 0o600 });
  const check = join(dir, 'check');
  // pam_exec writes the token followed by a NUL byte.
  writeFileSync(
    check,
    [
      '#!/bin/sh',
      '# moshctl lab: accept the one-time code in the file named by $1.',
      "got=$(tr -d '\\000\\r\\n')",
      'want=$(cat "$1")',
      '[ -n "$got" ] && [ "$got" = "$want" ]',
      '',
    ].join('\n'),
    { mode: 0o700 },
  );
  const pamFile = join(dir, 'pam.d-sshd');
  writeFileSync(
    pamFile,
    [
      '# moshctl lab: a one-time code instead of a password (mounted over /etc/pam.d/sshd for one host)',
      `auth required pam_exec.so expose_authtok quiet ${check} ${codeFile}`,
      // pam_exec ignores pam_setcred, and a stack with no answer denies it (sshd then drops the
      // session). For authentication the required pam_exec still decides: its failure fails the stack.
      'auth optional pam_permit.so',
      'account required pam_permit.so',
      'session required pam_permit.so',
      'password required pam_deny.so',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  return pamFile;
}

/**
 * The file that really runs for `name`: /usr/bin/NAME's target when there is
 * one, else whatever `command -v` finds. (A pyenv shim first on PATH is a
 * script that runs some other python; the system's binary is what a plain
 * host has.) Hiding this path hides the program from sessions whose PATH
 * leads to it; a session whose shell startup puts another copy first (root's
 * .bashrc with pyenv here) still finds that one.
 */
export function realProgramPath(name: string): string {
  if (!/^[A-Za-z0-9._+-]+$/.test(name)) throw new Error(`bad program name "${name}"`);
  const system = `/usr/bin/${name}`;
  if (existsSync(system)) return realpathSync(system);
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const found = r.stdout.trim();
  if (r.status !== 0 || !found.startsWith('/')) throw new Error(`${name} is not installed`);
  return realpathSync(found);
}

/** Where the lab keeps what LabOptions.mounts puts over `target` on `host` (the n-th mount of that host). */
export function labMountSource(labDir: string, host: string, index: number, target: string): string {
  const base = target.split('/').filter(Boolean).pop() ?? 'root';
  return join(labDir, 'mounts', host, `${index}-${base}`);
}

/** Checks LabOptions.mounts of one host before anything is created. */
export function checkLabMounts(mounts: readonly LabMount[]): void {
  for (const m of mounts) {
    const p = m.target;
    if (!isAbsolute(p) || normalize(p) !== p) throw new Error(`mounts: "${p}" is not a plain absolute path`);
    if (!existsSync(p)) throw new Error(`mounts: ${p} does not exist (a mount needs something to cover)`);
    if (!('emptyDir' in m) && statSync(p).isDirectory())
      throw new Error(`mounts: ${p} is a folder; cover it with emptyDir`);
    if ('emptyDir' in m && !statSync(p).isDirectory())
      throw new Error(`mounts: ${p} is not a folder; cover it with text`);
  }
}

/**
 * Writes the lab's side of each mount (world-readable: login users' shells
 * read a mounted ~/.bashrc) and returns them for sshdArgv.
 */
export function writeLabMounts(labDir: string, host: string, mounts: readonly LabMount[]): PrivateMount[] {
  if (mounts.length === 0) return [];
  const dir = join(labDir, 'mounts', host);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(join(labDir, 'mounts'), 0o755);
  chmodSync(dir, 0o755);
  return mounts.map((m, i) => {
    const source = labMountSource(labDir, host, i, m.target);
    if ('emptyDir' in m) {
      mkdirSync(source, { mode: 0o755 });
      chmodSync(source, 0o755);
    } else {
      writeFileSync(source, m.text, { mode: 0o755 });
      chmodSync(source, 0o755);
    }
    return { source, target: m.target };
  });
}

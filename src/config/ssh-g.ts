// Runs `ssh -G` for hosts.ts. node:child_process, not execa: config loading
// stays light for `plan` and `config`, which never load execa.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { findOnPath } from '../which.js';
import type { HostsContext, SshG } from './hosts.js';

type Env = Readonly<Record<string, string | undefined>>;

/** `ssh -G` runs started before anyone asked for them (startSshG), by program and arguments. */
const early = new Map<string, Promise<string>>();

const keyOf = (ssh: string, args: readonly string[]): string => [ssh, ...args].join('\0');

function sshGArgs(file: string | undefined, host: string, opts: { user?: string; port?: number }): string[] {
  return [
    ...(file ? ['-F', file] : []),
    '-G',
    ...(opts.user ? ['-l', opts.user] : []),
    ...(opts.port ? ['-p', String(opts.port)] : []),
    '--',
    host,
  ];
}

function runSshG(ssh: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ssh, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(stderr.trim() || err.message));
      else resolve(stdout);
    });
  });
}

/** The settings hosts.ts needs to run `ssh -G`, from the environment; sshG is undefined without ssh. */
export function sshGContext(env: Env): Pick<HostsContext, 'sshG' | 'sshConfigLabel'> {
  const ssh = findOnPath('ssh', env.PATH);
  const file = env.MOSHCTL_SSH_CONFIG || undefined;
  const label = file ?? '~/.ssh/config (and /etc/ssh/ssh_config)';
  if (!ssh) return { sshG: undefined, sshConfigLabel: label };
  const sshG: SshG = (host, opts) => {
    const args = sshGArgs(file, host, opts);
    const key = keyOf(ssh, args);
    const started = early.get(key);
    early.delete(key);
    return started ?? runSshG(ssh, args);
  };
  return { sshG, sshConfigLabel: label };
}

/** What a name the command line gives may be: a plain host name (user@ and :port forms are left to hosts.ts). */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,252}$/;

/**
 * Starts `ssh -G NAME` now, before the command that will ask for it has even
 * loaded: a host only ssh_config knows is looked up that way first (hosts.ts),
 * and ssh reads its config on the other core while moshctl loads the rest of
 * itself. The answer waits for the sshG call with the same arguments.
 *
 * A host moshproxy.yaml declares is looked up by its address instead, so a
 * NAME that is a key in one of `files` (the config files, read as text: a
 * guess, not a parse) starts nothing; were it started, ssh's run would go
 * unused, a few ms of CPU and nothing the command waits for.
 */
export function startSshG(env: Env, name: string | undefined, files: readonly string[]): void {
  if (name === undefined || !PLAIN_NAME.test(name)) return;
  const key = new RegExp(`^[ \\t]+(["']?)${name.replace(/\./g, '\\.')}\\1[ \\t]*:`, 'm');
  if (files.some((f) => key.test(readQuietly(f)))) return;
  const ssh = findOnPath('ssh', env.PATH);
  if (!ssh) return;
  const args = sshGArgs(env.MOSHCTL_SSH_CONFIG || undefined, name, {});
  const run = runSshG(ssh, args);
  // Unused, its failure is nobody's; used, the caller gets it from the promise itself.
  run.catch(() => undefined);
  early.set(keyOf(ssh, args), run);
}

function readQuietly(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return ''; // the command reports it
  }
}

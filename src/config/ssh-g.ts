// Runs `ssh -G` for hosts.ts. node:child_process, not execa: config loading
// stays light for `plan` and `config`, which never load execa.
import { execFile } from 'node:child_process';
import { findOnPath } from '../which.js';
import type { HostsContext, SshG } from './hosts.js';

/** The settings hosts.ts needs to run `ssh -G`, from the environment; sshG is undefined without ssh. */
export function sshGContext(
  env: Readonly<Record<string, string | undefined>>,
): Pick<HostsContext, 'sshG' | 'sshConfigLabel'> {
  const ssh = findOnPath('ssh', env.PATH);
  const file = env.MOSHCTL_SSH_CONFIG || undefined;
  const label = file ?? '~/.ssh/config (and /etc/ssh/ssh_config)';
  if (!ssh) return { sshG: undefined, sshConfigLabel: label };
  const sshG: SshG = (host, opts) =>
    new Promise((resolve, reject) => {
      const args = [
        ...(file ? ['-F', file] : []),
        '-G',
        ...(opts.user ? ['-l', opts.user] : []),
        ...(opts.port ? ['-p', String(opts.port)] : []),
        '--',
        host,
      ];
      execFile(ssh, args, { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(stderr.trim() || err.message));
        else resolve(stdout);
      });
    });
  return { sshG, sshConfigLabel: label };
}

// Keys, sshd configs and the client's known_hosts for a lab. Each host gets
// its own host key so a test can tell hops apart (a known_hosts mixup between
// bastion and target must fail, not pass by accident).

import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SocketDirs } from './multiplexers.js';
import { mustRun } from './proc.js';

export const SSHD = '/usr/sbin/sshd';

export async function generateKey(path: string, comment: string): Promise<string> {
  await mustRun(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return readFileSync(`${path}.pub`, 'utf8').trim();
}

export interface SshdFiles {
  dir: string;
  config: string;
  log: string;
  hostKey: string;
  /** "ssh-ed25519 AAAA… comment" */
  hostPublicKey: string;
}

function hostKeyPath(labDir: string, host: string): string {
  return join(labDir, host, 'ssh_host_ed25519_key');
}

/** A lab host's public key line, "ssh-ed25519 AAAA… comment" (the lab dir is root's). */
export function readHostPublicKey(labDir: string, host: string): string {
  return readFileSync(`${hostKeyPath(labDir, host)}.pub`, 'utf8').trim();
}

/** Makes a host's key under <labDir>/<host>/; writeSshdConfig() writes its config once it is signed. */
export async function makeHostKey(labDir: string, host: string): Promise<SshdFiles> {
  const dir = join(labDir, host);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostKey = hostKeyPath(labDir, host);
  const hostPublicKey = await generateKey(hostKey, `lab-${host}`);
  return { dir, config: join(dir, 'sshd_config'), log: join(dir, 'sshd.log'), hostKey, hostPublicKey };
}

export interface SshdConfigOptions {
  host: string;
  listen: string[];
  authorizedKeysFile: string;
  /** The host key's certificate, offered next to the plain key. */
  hostCertificate: string;
  /** The user CA's public key: certificates it signed log in without authorized_keys. */
  trustedUserCaKeys: string;
  /**
   * A key and then a one-time code through PAM (keyboard-interactive); the
   * caller mounts the lab's PAM config over /etc/pam.d/sshd for this sshd.
   */
  kbdInteractive: boolean;
  /** This host's own tmux and screen socket folders (multiplexers.ts), given to every session. */
  socketDirs?: SocketDirs;
  /** Lines put first, so they win over the lab's own (LabOptions.sshdConfig). */
  extraConfig?: readonly string[];
  /** The PATH every session gets (a busybox host's applet folder) instead of sshd's own. */
  sessionPath?: string;
}

export function writeSshdConfig(files: SshdFiles, o: SshdConfigOptions): void {
  const auth = o.kbdInteractive
    ? [
        'UsePAM yes',
        // Root must be allowed more than keys, or sshd never starts the code prompt for root.
        'PermitRootLogin yes',
        'KbdInteractiveAuthentication yes',
        'AuthenticationMethods publickey,keyboard-interactive',
      ]
    : ['UsePAM no', 'PermitRootLogin prohibit-password', 'KbdInteractiveAuthentication no'];
  // sshd keeps the first SetEnv line that applies, so PATH goes into each of them.
  const path = o.sessionPath ? ` PATH=${o.sessionPath}` : '';
  const lines = [
    `# moshctl lab: sshd for "${o.host}"`,
    // First: sshd keeps the first value of a keyword, so these override the lab's lines below.
    ...(o.extraConfig ?? []),
    ...o.listen.map((a) => (a.includes(':') ? `ListenAddress [${a}]:22` : `ListenAddress ${a}:22`)),
    `HostKey ${files.hostKey}`,
    `HostCertificate ${o.hostCertificate}`,
    `TrustedUserCAKeys ${o.trustedUserCaKeys}`,
    'PidFile none',
    ...auth,
    // The lab dir lives under /tmp, which StrictModes would reject.
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    // sshd reads this as the user logging in: the lab makes it world-readable.
    `AuthorizedKeysFile ${o.authorizedKeysFile}`,
    'AllowTcpForwarding yes',
    'X11Forwarding no',
    'PrintMotd no',
    'UseDNS no',
    // As on a stock Debian server, so the lab does not hide environment surprises.
    'AcceptEnv LANG LC_*',
    'Subsystem sftp internal-sftp',
    // Tests open many sessions quickly; the default 10:30:100 would drop some.
    'MaxStartups 100',
    'LogLevel VERBOSE',
    // Last: a Match block runs to the end of the file. SetEnv there replaces the global one.
    ...(o.socketDirs
      ? [
          `SetEnv TMUX_TMPDIR=${o.socketDirs.tmux}${path}`,
          'Match User root',
          `  SetEnv TMUX_TMPDIR=${o.socketDirs.tmux} SCREENDIR=${o.socketDirs.screenRoot}${path}`,
        ]
      : path
        ? [`SetEnv${path}`]
        : []),
    '',
  ];
  writeFileSync(files.config, lines.join('\n'), { mode: 0o600 });
}

/**
 * known_hosts for the client: plain entries for all hosts except those in
 * `hashed`, which go through `ssh-keygen -H` so hashed lookups are exercised.
 */
export async function writeKnownHosts(
  path: string,
  entries: { address: string; publicKey: string; hashed: boolean }[],
): Promise<void> {
  const keyPart = (k: string): string => k.split(/\s+/).slice(0, 2).join(' ');
  const plain = entries.filter((e) => !e.hashed).map((e) => `${e.address} ${keyPart(e.publicKey)}`);
  writeFileSync(path, plain.map((l) => l + '\n').join(''), { mode: 0o600 });
  const toHash = entries.filter((e) => e.hashed);
  if (toHash.length === 0) return;
  const scratch = `${path}.to-hash`;
  writeFileSync(scratch, toHash.map((e) => `${e.address} ${keyPart(e.publicKey)}\n`).join(''), {
    mode: 0o600,
  });
  // Rewrites the file in place (keeping a .old copy we ignore).
  await mustRun(['ssh-keygen', '-q', '-H', '-f', scratch]);
  appendFileSync(path, readFileSync(scratch, 'utf8'));
  rmSync(scratch, { force: true });
  rmSync(`${scratch}.old`, { force: true });
}

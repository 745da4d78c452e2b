// The files a lab writes for its client and servers: the client key, one
// host key (with a certificate) and sshd_config per server, the host and
// user CAs, known_hosts (plain, and one trusting only the host CA), an
// OpenSSH client config and the moshproxy.yaml handed to moshctl. All live in
// the lab dir, which destroy() removes.

import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certPaths, makeCas, makeCertOnlyKey, signHostKey, writeCaKnownHosts } from './certs.js';
import { renderLabConfig } from './config-file.js';
import { writeOtpFiles } from './mounts.js';
import { makeSocketDirs } from './multiplexers.js';
import { generateKey, makeHostKey, writeKnownHosts, writeSshdConfig, type SshdFiles } from './sshd.js';
import type { HostName, HostPlan } from './topology.js';
import { CLIENT_USER, LOGIN_USERS } from './users.js';

export interface LabFilePaths {
  configFile: string;
  keyFile: string;
  knownHostsFile: string;
  sshConfigFile: string;
  caKnownHostsFile: string;
  certOnlyKeyFile: string;
}

export function labFilePaths(dir: string): LabFilePaths {
  return {
    configFile: join(dir, 'moshproxy.yaml'),
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    sshConfigFile: join(dir, 'ssh_config'),
    ...certPaths(dir),
  };
}

/** Writes `name` in the lab dir, 0600 and root's (as every lab file not meant for others); returns its path. */
export function writeLabFile(dir: string, name: string, text: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) throw new Error(`bad file name "${name}"`);
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600); // `mode` applies only to a new file
  return path;
}

export interface LabFilesInput {
  dir: string;
  runId: string;
  /** Hosts that run sshd. */
  servers: HostPlan[];
  addressesOf(host: HostName): string[];
  /** Servers that ask for a one-time code after the key. */
  kbdInteractive: readonly HostName[];
  sshClient: 'ssh2' | 'openssh';
  otpCode: string;
  /** Per host, lines put first in its sshd_config (LabOptions.sshdConfig). */
  sshdConfig?: Partial<Record<HostName, string[]>>;
  /** Hosts whose sshd also listens on 127.0.0.1, for the broker bridge (LabOptions.broker). */
  broker?: readonly HostName[];
  /** Per host, the PATH its sessions get (a busybox host's applet folder). */
  sessionPath?: Partial<Record<HostName, string>>;
}

export interface LabFiles {
  /** Each server's sshd files, in the order of `servers`. */
  sshd: SshdFiles[];
  /** The lab's authorized_keys (the client key), as every server reads it. */
  authorizedKeys: string;
  /** The PAM config for kbdInteractive hosts (undefined when there are none). */
  pamFile: string | undefined;
}

/** The users the cert-only key's certificate is valid for. */
export const CERT_PRINCIPALS = ['root', ...LOGIN_USERS.map((u) => u.name), CLIENT_USER.name];

export async function writeLabFiles(paths: LabFilePaths, input: LabFilesInput): Promise<LabFiles> {
  const [clientKey, cas, hostKeys] = await Promise.all([
    generateKey(paths.keyFile, `moshctl-lab-${input.runId}`),
    makeCas(input.dir, input.runId),
    Promise.all(input.servers.map((h) => makeHostKey(input.dir, h.name))),
  ]);
  // sshd reads AuthorizedKeysFile with the privileges of the user logging in:
  // world-readable (it holds only a public key), in a lab dir others may traverse.
  const authorizedKeys = join(input.dir, 'authorized_keys');
  writeFileSync(authorizedKeys, clientKey + '\n', { mode: 0o644 });
  await Promise.all([
    makeCertOnlyKey(cas, paths.certOnlyKeyFile, input.runId, CERT_PRINCIPALS),
    ...input.servers.map(async (h, i) => {
      const files = hostKeys[i] as SshdFiles;
      const cert = await signHostKey(cas, files.hostKey, h.name, [h.sshAddress, h.dnsName]);
      writeSshdConfig(files, {
        host: h.name,
        listen: [...input.addressesOf(h.name), ...(input.broker?.includes(h.name) ? ['127.0.0.1'] : [])],
        authorizedKeysFile: authorizedKeys,
        hostCertificate: cert,
        trustedUserCaKeys: cas.userCaPubFile,
        kbdInteractive: input.kbdInteractive.includes(h.name),
        socketDirs: makeSocketDirs(input.dir, h.name),
        ...(input.sshdConfig?.[h.name] ? { extraConfig: input.sshdConfig[h.name] } : {}),
        ...(input.sessionPath?.[h.name] ? { sessionPath: input.sessionPath[h.name] } : {}),
      });
    }),
  ]);
  // Every host under its address and its name. The target's entries are hashed
  // so that moshctl's hashed-name lookup is exercised.
  await writeKnownHosts(
    paths.knownHostsFile,
    input.servers.flatMap((h, i) =>
      [h.sshAddress, h.dnsName].map((address) => ({
        address,
        publicKey: (hostKeys[i] as SshdFiles).hostPublicKey,
        hashed: h.name === 'target',
      })),
    ),
  );
  writeCaKnownHosts(paths.caKnownHostsFile, cas);
  writeFileSync(paths.sshConfigFile, renderSshConfig(paths), { mode: 0o600 });
  writeFileSync(paths.configFile, labConfigText(paths, input, {}), { mode: 0o600 });
  const pamFile = input.kbdInteractive.length > 0 ? writeOtpFiles(input.dir, input.otpCode) : undefined;
  return { sshd: hostKeys, authorizedKeys, pamFile };
}

export interface ConfigTextOptions {
  /** Addresses as lab.test names instead of IP addresses. */
  names?: boolean;
  /** Default: the lab's own (root's) key and known_hosts. */
  keyFile?: string;
  knownHostsFile?: string;
  /** The remote user; default root. */
  user?: string;
  /** Default: the lab's own. */
  sshClient?: 'ssh2' | 'openssh';
}

export function labConfigText(
  paths: LabFilePaths,
  input: Pick<LabFilesInput, 'servers' | 'sshClient'>,
  o: ConfigTextOptions,
): string {
  return renderLabConfig({
    keyFile: o.keyFile ?? paths.keyFile,
    knownHostsFile: o.knownHostsFile ?? paths.knownHostsFile,
    hosts: input.servers,
    names: o.names ?? false,
    user: o.user,
    sshClient: o.sshClient ?? input.sshClient,
  });
}

/**
 * For plain `ssh -F` in tests and by hand. Options given with -o apply only to
 * the destination, but ssh passes -F on to its -J hops, so the hops get the
 * lab key and known_hosts too.
 */
function renderSshConfig(paths: LabFilePaths): string {
  return [
    'Host *',
    '  User root',
    `  IdentityFile ${paths.keyFile}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${paths.knownHostsFile}`,
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    '  UpdateHostKeys no',
    '  BatchMode yes',
    '  ConnectTimeout 5',
    '',
  ].join('\n');
}

// The files a lab writes for its client and servers: the client key, one
// host key and sshd_config per server, known_hosts, an OpenSSH client config
// and the moshproxy.yaml handed to moshctl. All live in the lab dir, which
// destroy() removes.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderLabConfig } from './config-file.js';
import { generateKey, prepareSshd, writeKnownHosts, type SshdFiles } from './sshd.js';
import type { HostName, HostPlan } from './topology.js';

export interface LabFilePaths {
  configFile: string;
  keyFile: string;
  knownHostsFile: string;
  sshConfigFile: string;
}

export function labFilePaths(dir: string): LabFilePaths {
  return {
    configFile: join(dir, 'moshproxy.yaml'),
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    sshConfigFile: join(dir, 'ssh_config'),
  };
}

export interface LabFilesInput {
  dir: string;
  runId: string;
  bastions: 1 | 2;
  /** Hosts that run sshd. */
  servers: HostPlan[];
  addressesOf(host: HostName): string[];
}

/** Writes every file; returns each server's sshd files, in the order of `servers`. */
export async function writeLabFiles(paths: LabFilePaths, input: LabFilesInput): Promise<SshdFiles[]> {
  const clientKey = await generateKey(paths.keyFile, `moshctl-lab-${input.runId}`);
  const authorizedKeys = join(input.dir, 'authorized_keys');
  writeFileSync(authorizedKeys, clientKey + '\n', { mode: 0o600 });
  const files = await Promise.all(
    input.servers.map((h) => prepareSshd(input.dir, h.name, input.addressesOf(h.name), authorizedKeys)),
  );
  // The target's entry is hashed so that moshctl's hashed-name lookup is exercised.
  await writeKnownHosts(
    paths.knownHostsFile,
    input.servers.map((h, i) => ({
      address: h.sshAddress,
      publicKey: (files[i] as SshdFiles).hostPublicKey,
      hashed: h.name === 'target',
    })),
  );
  writeFileSync(paths.sshConfigFile, renderSshConfig(paths), { mode: 0o600 });
  const addressOf = (name: HostName): string | undefined =>
    input.servers.find((h) => h.name === name)?.sshAddress;
  writeFileSync(
    paths.configFile,
    renderLabConfig({
      keyFile: paths.keyFile,
      knownHostsFile: paths.knownHostsFile,
      bastions: input.bastions,
      addresses: {
        bastion: addressOf('bastion') ?? '',
        bastion2: addressOf('bastion2'),
        target: addressOf('target') ?? '',
      },
    }),
    { mode: 0o600 },
  );
  return files;
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

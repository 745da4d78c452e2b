// The moshproxy.yaml a lab hands to moshctl. Its shape is the config contract
// shared with src/config; it is written out by hand (not with a YAML library)
// so the file reads exactly like one a user would check in.

import { dnsNameOf } from './topology.js';

export interface LabConfigInput {
  keyFile: string;
  knownHostsFile: string;
  bastions: 1 | 2;
  addresses: { bastion: string; bastion2?: string; target: string };
  /** Write each host's lab.test name as its `address:` instead of its IP address. */
  names?: boolean;
  /** The remote user under `defaults:`; default root. */
  user?: string;
  /** `ssh_client:` under `defaults:`; ssh2 (the built-in default) writes no line. */
  sshClient?: 'ssh2' | 'openssh' | undefined;
}

export function renderLabConfig(c: LabConfigInput): string {
  const address = (host: 'bastion' | 'bastion2' | 'target'): string => {
    const ip = c.addresses[host];
    if (!ip) throw new Error(`renderLabConfig: no ${host} address`);
    return c.names ? dnsNameOf(host) : ip;
  };
  const lines = [
    'version: 1',
    'defaults:',
    `  user: ${c.user ?? 'root'}`,
    `  identity_file: ${c.keyFile}`,
    `  known_hosts: ${c.knownHostsFile}`,
    ...(c.sshClient === 'openssh' ? ['  ssh_client: openssh'] : []),
    'mosh:',
    '  server_ports: 60001-60010',
    '  network_timeout: 600',
    '  signal_timeout: 60',
    'hosts:',
    '  bastion:',
    `    address: ${address('bastion')}`,
    '    relay:',
    '      ports: 61001-61010',
  ];
  if (c.bastions === 2) {
    lines.push(
      '  bastion2:',
      `    address: ${address('bastion2')}`,
      '    via: [bastion]',
      '    relay:',
      '      ports: 62001-62010',
    );
  }
  lines.push(
    '  target:',
    `    address: ${address('target')}`,
    `    via: ${c.bastions === 2 ? '[bastion, bastion2]' : '[bastion]'}`,
    '',
  );
  return lines.join('\n');
}

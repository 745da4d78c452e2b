// The moshproxy.yaml a lab hands to moshctl. Its shape is the config contract
// shared with src/config; it is written out by hand (not with a YAML library)
// so the file reads exactly like one a user would check in.

import { dnsNameOf, type HostName } from './topology.js';

/** A lab host as the config names it: its address and jump chain (from the topology plan). */
export interface LabConfigHost {
  name: HostName;
  sshAddress: string;
  via: HostName[];
}

export interface LabConfigInput {
  keyFile: string;
  knownHostsFile: string;
  /** The lab's hosts; bastion, bastion2 (when there is one) and target are written. */
  hosts: readonly LabConfigHost[];
  /** Write each host's lab.test name as its `address:` instead of its IP address. */
  names?: boolean;
  /** The remote user under `defaults:`; default root. */
  user?: string;
  /** `ssh_client:` under `defaults:`; ssh2 (the built-in default) writes no line. */
  sshClient?: 'ssh2' | 'openssh' | undefined;
}

/** UDP ports each bastion's relay may use. */
const RELAY_PORTS: Partial<Record<HostName, string>> = { bastion: '61001-61010', bastion2: '62001-62010' };

export function renderLabConfig(c: LabConfigInput): string {
  const entry = (name: 'bastion' | 'bastion2' | 'target'): string[] => {
    const host = c.hosts.find((h) => h.name === name);
    if (!host) {
      if (name === 'bastion2') return [];
      throw new Error(`renderLabConfig: no ${name} address`);
    }
    // An IPv6 address is a plain YAML string (no `: ` in it), as a user would write it.
    const lines = [`  ${name}:`, `    address: ${c.names ? dnsNameOf(name) : host.sshAddress}`];
    if (host.via.length > 0) lines.push(`    via: [${host.via.join(', ')}]`);
    const ports = RELAY_PORTS[name];
    if (ports) lines.push('    relay:', `      ports: ${ports}`);
    return lines;
  };
  return [
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
    ...entry('bastion'),
    ...entry('bastion2'),
    ...entry('target'),
    '',
  ].join('\n');
}

// The moshproxy.yaml a lab hands to moshctl. Its shape is the config contract
// shared with src/config; it is written out by hand (not with a YAML library)
// so the file reads exactly like one a user would check in.

export interface LabConfigInput {
  keyFile: string;
  knownHostsFile: string;
  bastions: 1 | 2;
  addresses: { bastion: string; bastion2?: string; target: string };
}

export function renderLabConfig(c: LabConfigInput): string {
  const lines = [
    'version: 1',
    'defaults:',
    '  user: root',
    `  identity_file: ${c.keyFile}`,
    `  known_hosts: ${c.knownHostsFile}`,
    'mosh:',
    '  server_ports: 60001-60010',
    '  network_timeout: 600',
    '  signal_timeout: 60',
    'hosts:',
    '  bastion:',
    `    address: ${c.addresses.bastion}`,
    '    relay:',
    '      ports: 61001-61010',
  ];
  if (c.bastions === 2) {
    if (!c.addresses.bastion2) throw new Error('renderLabConfig: two bastions but no bastion2 address');
    lines.push(
      '  bastion2:',
      `    address: ${c.addresses.bastion2}`,
      '    via: [bastion]',
      '    relay:',
      '      ports: 62001-62010',
    );
  }
  lines.push(
    '  target:',
    `    address: ${c.addresses.target}`,
    `    via: ${c.bastions === 2 ? '[bastion, bastion2]' : '[bastion]'}`,
    '',
  );
  return lines.join('\n');
}

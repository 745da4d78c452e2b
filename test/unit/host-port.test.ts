// An IPv6 address with a port is written `[ADDRESS]:PORT` wherever moshctl
// shows one (hop labels, hints, task titles), as ssh and known_hosts write it:
// `2001:db8::10:22` would read as a longer address with no port.
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import { hostPort, ipVersion } from '../../src/host-port.js';
import { forwardError, forwardTimeout, hopLabel } from '../../src/ssh/hop-errors.js';

const hop = (name: string, address: string): SshHost => ({
  name,
  ssh_name: name,
  address,
  port: 22,
  user: 'ops',
  identity_files: [],
  certificate_files: [],
  known_hosts: [],
  global_known_hosts: [],
  host_key_alias: undefined,
  host_key_policy: 'strict',
  identity_agent: undefined,
  connect_timeout: 10,
  server_alive_interval: 15,
  proxy_command: undefined,
  ssh_client: 'ssh2',
  hash_known_hosts: false,
});

describe('hostPort', () => {
  it.each([
    ['192.0.2.1', 22, '192.0.2.1:22'],
    ['bastion.example.com', 2222, 'bastion.example.com:2222'],
    ['2001:db8::10', 22, '[2001:db8::10]:22'],
    ['::1', 60001, '[::1]:60001'],
    ['2001:db8:113::10', '<port of step 3>', '[2001:db8:113::10]:<port of step 3>'],
  ])('%s with %s is %s', (host, port, want) => {
    expect(hostPort(host, port)).toBe(want);
  });
});

describe('ipVersion', () => {
  it('is net.isIP, for addresses, names and near misses', () => {
    const texts = [
      ...[
        '192.0.2.1',
        '0.0.0.0',
        '256.1.1.1',
        '1.2.3',
        '01.2.3.4',
        'bastion',
        'app',
        'host-00002',
        '10.0.3.12x',
      ],
      ...['2001:db8::10', '::1', '::', 'fe80::1%eth0', '::ffff:192.0.2.1', '2001:db8:::1', 'a:b', ':', ''],
    ];
    for (const t of texts) expect(ipVersion(t), t).toBe(isIP(t));
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain(), fc.string()), (t) => ipVersion(t) === isIP(t)),
    );
  });
});

describe('hop labels and hints for an IPv6 hop', () => {
  const bastion = hop('bastion', '192.0.2.1');
  const target = hop('target', '2001:db8:113::10');

  it('bracket the address in the label, the forwarding hint and a timeout', () => {
    expect(hopLabel(target)).toBe('target (ops@[2001:db8:113::10]:22)');
    expect(hopLabel(bastion)).toBe('bastion (ops@192.0.2.1:22)');
    const refused = forwardError(Object.assign(new Error('refused'), { reason: 1 }), target, bastion);
    expect(refused.message).toContain('forward a connection to target ([2001:db8:113::10]:22)');
    expect(refused.hint).toContain('a PermitOpen that includes [2001:db8:113::10]:22');
    const late = forwardTimeout(target, bastion, 5000);
    expect(late.message).toContain('to target (ops@[2001:db8:113::10]:22) within 5 s');
    expect(late.hint).toContain('bastion can reach [2001:db8:113::10]:22');
  });
});

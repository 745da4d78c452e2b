// The lab's network plan (src/lab/topology.ts) is plain data: which links
// carry which address families, and what the config the lab hands moshctl
// says. The e2e lab tests prove the kernel does what the plan says; these
// prove the plan itself, for each IPv6 layout.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { renderLabConfig } from '../../src/lab/config-file.js';
import {
  addressesOf,
  ipv6Hosts,
  lanIpv6For,
  planTopology,
  type HostName,
  type TopologyPlan,
} from '../../src/lab/topology.js';

function families(plan: TopologyPlan): Record<string, string> {
  return Object.fromEntries(
    plan.links.map((l) => [l.name, [l.ipv4 ? 'ipv4' : '', l.ipv6 ? 'ipv6' : ''].filter(Boolean).join('+')]),
  );
}

function host(plan: TopologyPlan, name: HostName) {
  const h = plan.hosts.find((x) => x.name === name);
  if (!h) throw new Error(`no ${name}`);
  return h;
}

describe('planTopology', () => {
  it('without ipv6: IPv4 on every link, nothing routes', () => {
    const plan = planTopology(1);
    expect(families(plan)).toEqual({ client: 'ipv4', outsider: 'ipv4', target: 'ipv4' });
    expect(ipv6Hosts(plan)).toEqual([]);
    expect(plan.ipv6Routers).toEqual([]);
    expect(host(plan, 'target')).toMatchObject({ sshAddress: '203.0.113.10', via: ['bastion'] });
    expect(addressesOf(plan, 'bastion')).toEqual(['192.0.2.1', '203.0.113.1']);
  });

  it('behind-bastion: only the link to the target carries IPv6, and only IPv6; nothing routes', () => {
    const plan = planTopology(1, 'behind-bastion');
    expect(families(plan)).toEqual({ client: 'ipv4', outsider: 'ipv4', target: 'ipv6' });
    expect(ipv6Hosts(plan)).toEqual(['bastion', 'target']);
    expect(plan.ipv6Routers).toEqual([]);
    expect(host(plan, 'target')).toMatchObject({ sshAddress: '2001:db8:113::10', via: ['bastion'] });
    expect(addressesOf(plan, 'client')).toEqual(['192.0.2.10']);
    expect(addressesOf(plan, 'bastion')).toEqual(['192.0.2.1', '2001:db8:113::1']);
    expect(addressesOf(plan, 'target')).toEqual(['2001:db8:113::10']);
    const target = plan.links.find((l) => l.name === 'target');
    expect(target?.ipv6).toEqual({
      nearCidr: '2001:db8:113::1/64',
      farCidr: '2001:db8:113::10/64',
      farGateway: '2001:db8:113::1',
    });
  });

  it('behind-bastion with two bastions: the IPv6 link is the one from bastion2', () => {
    const plan = planTopology(2, 'behind-bastion');
    expect(families(plan)).toEqual({ client: 'ipv4', outsider: 'ipv4', bastion2: 'ipv4', target: 'ipv6' });
    expect(ipv6Hosts(plan)).toEqual(['bastion2', 'target']);
    expect(host(plan, 'target').via).toEqual(['bastion', 'bastion2']);
  });

  it('direct: a dual-stack LAN, an IPv6-only target the client reaches with no jump host, the bastion routing IPv6', () => {
    const plan = planTopology(1, 'direct');
    expect(families(plan)).toEqual({ client: 'ipv4+ipv6', outsider: 'ipv4+ipv6', target: 'ipv6' });
    expect(plan.ipv6Routers).toEqual(['bastion']);
    expect(host(plan, 'target')).toMatchObject({ sshAddress: '2001:db8:113::10', via: [] });
    expect(addressesOf(plan, 'client')).toEqual(['192.0.2.10', '2001:db8:2::10']);
    expect(addressesOf(plan, 'bastion')).toEqual(['192.0.2.1', '2001:db8:2::1', '2001:db8:113::1']);
    expect(plan.bridges).toEqual([
      { host: 'bastion', dev: 'lan0', cidrs: ['192.0.2.1/24', '2001:db8:2::1/64'] },
    ]);
    expect(() => planTopology(2, 'direct')).toThrow(/one bastion/);
  });

  it('keeps every address inside the documentation ranges', () => {
    for (const plan of [planTopology(2), planTopology(2, 'behind-bastion'), planTopology(1, 'direct')]) {
      for (const h of plan.hosts) {
        for (const a of addressesOf(plan, h.name)) {
          expect(a).toMatch(/^(192\.0\.2\.|198\.51\.100\.|203\.0\.113\.|2001:db8:)/);
        }
      }
    }
  });

  it('gives the client the same host number in both families', () => {
    expect(lanIpv6For('192.0.2.11')).toBe('2001:db8:2::11');
    expect(() => lanIpv6For('203.0.113.10')).toThrow(/192\.0\.2\.0\/24/);
  });
});

describe("the lab's moshproxy.yaml with an IPv6-only target", () => {
  const render = (ipv6: 'behind-bastion' | 'direct'): string =>
    renderLabConfig({
      keyFile: '/lab/id_ed25519',
      knownHostsFile: '/lab/known_hosts',
      hosts: planTopology(1, ipv6).hosts,
    });

  it('names the target by its IPv6 address, behind the bastion or with no via', () => {
    expect(render('behind-bastion').split('hosts:\n')[1]).toBe(
      [
        '  bastion:',
        '    address: 192.0.2.1',
        '    relay:',
        '      ports: 61001-61010',
        '  target:',
        '    address: 2001:db8:113::10',
        '    via: [bastion]',
        '',
      ].join('\n'),
    );
    expect(render('direct')).toMatch(/ {2}target:\n {4}address: 2001:db8:113::10\n$/);
  });

  it("reads back through moshctl's own config loader with the address as written", () => {
    const dir = mkdtempSync(join(tmpdir(), 'lab-topology-'));
    try {
      for (const [layout, via] of [
        ['behind-bastion', ['bastion']],
        ['direct', []],
      ] as const) {
        const file = join(dir, `${layout}.yaml`);
        writeFileSync(file, render(layout));
        const target = loadConfig([file], {}).config.hosts.target;
        expect(target?.address).toBe('2001:db8:113::10');
        expect(target?.chain).toEqual(via);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

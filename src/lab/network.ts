// Builds the namespaces and links of a TopologyPlan with iproute2, and the
// nftables rules that simulate a lossy link. The kernel here has no netem, so
// loss is `numgen random` in a netdev table on the near end of a link: its
// ingress and egress hooks see both directions without touching routing.

import { mustRun, run } from './proc.js';
import {
  LAN6_PREFIX,
  familiesOf,
  type HostName,
  type LinkName,
  type LinkPlan,
  type TopologyPlan,
} from './topology.js';

export type NamespaceOf = (host: HostName) => string;

/** Run several `ip` commands in one namespace with one process (`ip -batch`). */
async function ipBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await mustRun(['ip', '-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
}

export async function buildNetwork(plan: TopologyPlan, nsOf: NamespaceOf): Promise<void> {
  const hosts = plan.hosts.map((h) => h.name);
  await Promise.all(hosts.map((h) => mustRun(['ip', 'netns', 'add', nsOf(h)])));
  // Sysctls first: interfaces created later inherit `default`, so no IPv6
  // address appears where the plan has none. Where it has some, the interface
  // is switched on below, with no DAD delay and no router advertisements.
  await Promise.all(
    hosts.map((h) =>
      sysctl(nsOf(h), [
        'net.ipv4.ip_forward=0',
        'net.ipv6.conf.all.disable_ipv6=1',
        'net.ipv6.conf.default.disable_ipv6=1',
        'net.ipv6.conf.default.accept_dad=0',
        'net.ipv6.conf.default.accept_ra=0',
        'net.ipv6.conf.default.autoconf=0',
        `net.ipv6.conf.all.forwarding=${plan.ipv6Routers.includes(h) ? 1 : 0}`,
      ]),
    ),
  );
  for (const b of plan.bridges) {
    // STP off and no forward delay: ports forward as soon as they are up.
    await ipBatch(nsOf(b.host), [`link add ${b.dev} type bridge stp_state 0 forward_delay 0`]);
  }
  // Create each veth pair directly in its two namespaces, so interface names
  // never meet in the root namespace (two labs can use the same names).
  for (const l of plan.links) {
    await mustRun([
      'ip',
      'link',
      'add',
      l.farDev,
      'netns',
      nsOf(l.far),
      'type',
      'veth',
      'peer',
      'name',
      l.nearDev,
      'netns',
      nsOf(l.near),
    ]);
  }
  await Promise.all(
    [...ipv6Devices(plan)].map(([host, devs]) =>
      sysctl(
        nsOf(host),
        [...devs].map((d) => `net.ipv6.conf.${d}.disable_ipv6=0`),
      ),
    ),
  );
  const perNs = new Map<string, string[]>(hosts.map((h) => [nsOf(h), ['link set lo up']]));
  const add = (host: HostName, line: string): void => void perNs.get(nsOf(host))?.push(line);
  for (const b of plan.bridges) for (const c of b.cidrs) add(b.host, addrAdd(c, b.dev));
  for (const b of plan.bridges) add(b.host, `link set ${b.dev} up`);
  for (const l of plan.links) {
    for (const a of familiesOf(l)) {
      if (a.nearCidr) add(l.near, addrAdd(a.nearCidr, l.nearDev));
      add(l.far, addrAdd(a.farCidr, l.farDev));
    }
    if (!familiesOf(l).some((a) => a.nearCidr))
      add(l.near, `link set ${l.nearDev} master ${bridgeOf(plan, l.near)}`);
    add(l.near, `link set ${l.nearDev} up`);
    add(l.far, `link set ${l.farDev} up`);
    // A default route toward the client side makes "no forwarding" the only
    // thing between the client and the target, which is what the tests check.
    for (const a of familiesOf(l)) add(l.far, `route add default via ${a.farGateway} dev ${l.farDev}`);
  }
  await Promise.all([...perNs].map(([ns, lines]) => ipBatch(ns, lines)));
}

async function sysctl(ns: string, settings: string[]): Promise<void> {
  if (settings.length > 0) await mustRun(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...settings]);
}

/** `addr add`; an IPv6 address is usable at once (`nodad`: no duplicate detection in a lab). */
function addrAdd(cidr: string, dev: string): string {
  return `addr add ${cidr} dev ${dev}${cidr.includes(':') ? ' nodad' : ''}`;
}

/** By host, the interfaces that carry IPv6 (lo included): all others keep it switched off. */
function ipv6Devices(plan: TopologyPlan): Map<HostName, Set<string>> {
  const out = new Map<HostName, Set<string>>();
  const on = (host: HostName, dev: string): void => {
    const devs = out.get(host) ?? new Set(['lo']);
    out.set(host, devs.add(dev));
  };
  for (const b of plan.bridges) if (b.cidrs.some((c) => c.includes(':'))) on(b.host, b.dev);
  for (const l of plan.links) {
    if (!l.ipv6) continue;
    if (l.ipv6.nearCidr) on(l.near, l.nearDev);
    on(l.far, l.farDev);
  }
  return out;
}

function bridgeOf(plan: TopologyPlan, host: HostName): string {
  const b = plan.bridges.find((x) => x.host === host);
  if (!b) throw new Error(`no bridge on ${host}`);
  return b.dev;
}

export function findLink(plan: TopologyPlan, name: LinkName): LinkPlan {
  const l = plan.links.find((x) => x.name === name);
  if (!l)
    throw new Error(`this lab has no link "${name}" (links: ${plan.links.map((x) => x.name).join(', ')})`);
  return l;
}

/** One address of the client moving to another in the same family. */
export interface AddressMove {
  old: string;
  next: string;
}

/**
 * Give the far end of a LAN link (the client) new addresses in place of old
 * ones, one per family the link carries, keeping its default routes.
 */
export async function moveAddresses(
  link: LinkPlan,
  ns: string,
  moves: { ipv4?: AddressMove; ipv6?: AddressMove },
): Promise<void> {
  const batch: string[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    const move = moves[family];
    const addresses = link[family];
    if (!move) continue;
    if (!addresses) throw new Error(`roam: the ${link.name} link carries no ${family}`);
    checkFreeLanAddress(family, move.next);
    const prefix = addresses.farCidr.split('/')[1] ?? '';
    // Removing the only address of a family can drop its default route, so it is put back.
    batch.push(
      `addr del ${move.old}/${prefix} dev ${link.farDev}`,
      addrAdd(`${move.next}/${prefix}`, link.farDev),
      `route replace default via ${addresses.farGateway} dev ${link.farDev}`,
    );
  }
  const r = await run(['ip', '-n', ns, '-batch', '-'], { input: batch.join('\n') + '\n' });
  const to = [moves.ipv4?.next, moves.ipv6?.next].filter(Boolean).join(' and ');
  if (r.code !== 0) throw new Error(`roam to ${to}: ${r.stderr.trim()}`);
}

function checkFreeLanAddress(family: 'ipv4' | 'ipv6', address: string): void {
  const ok =
    family === 'ipv4'
      ? /^192\.0\.2\.(\d{1,3})$/.test(address) && !['192.0.2.1', '192.0.2.66'].includes(address)
      : address.startsWith(LAN6_PREFIX) &&
        /^[0-9a-f]{1,4}$/.test(address.slice(LAN6_PREFIX.length)) &&
        ![`${LAN6_PREFIX}1`, `${LAN6_PREFIX}66`].includes(address);
  const range = family === 'ipv4' ? '192.0.2.0/24' : `${LAN6_PREFIX}/64`;
  if (!ok) throw new Error(`roam: ${address} is not a free address in ${range}`);
}

/** Bring the near end of a link down or up: the far host keeps its addresses and routes. */
export async function setLinkState(link: LinkPlan, nsOf: NamespaceOf, up: boolean): Promise<void> {
  await mustRun(['ip', '-n', nsOf(link.near), 'link', 'set', link.nearDev, up ? 'up' : 'down']);
}

function dropTable(link: LinkName): string {
  return `moshctl_lab_drop_${link}`;
}

/** Drop `percent` % of packets in each direction on a link (0 removes the rule). */
export async function setDropShare(link: LinkPlan, nsOf: NamespaceOf, percent: number): Promise<void> {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
    throw new Error(`dropShare: percent must be an integer 0-100, got ${percent}`);
  }
  const ns = nsOf(link.near);
  const table = dropTable(link.name);
  if (percent === 0) {
    await run(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', table]);
    return;
  }
  // `numgen random mod 100` yields 0..99, so "< 100" would be rejected: 100 % is a plain drop.
  const verdict = percent >= 100 ? 'drop' : `numgen random mod 100 < ${percent} drop`;
  const dev = link.nearDev;
  // "add table; delete table; table {...}" replaces any earlier share atomically.
  const script = `add table netdev ${table}
delete table netdev ${table}
table netdev ${table} {
  chain from_far { type filter hook ingress device "${dev}" priority 0; ${verdict}; }
  chain to_far { type filter hook egress device "${dev}" priority 0; ${verdict}; }
}
`;
  await mustRun(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: script });
}

function udpTable(link: LinkName): string {
  return `moshctl_lab_noudp_${link}`;
}

/**
 * Drop every UDP datagram on a link, both ways (hotel Wi-Fi that lets only TCP
 * through); `on: false` removes the rule. IPv4 and IPv6 alike; ARP and TCP pass.
 */
export async function setUdpBlocked(link: LinkPlan, nsOf: NamespaceOf, on: boolean): Promise<void> {
  const ns = nsOf(link.near);
  const table = udpTable(link.name);
  if (!on) {
    await run(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'netdev', table]);
    return;
  }
  const dev = link.nearDev;
  const script = `add table netdev ${table}
delete table netdev ${table}
table netdev ${table} {
  chain from_far { type filter hook ingress device "${dev}" priority 0; meta l4proto udp drop; }
  chain to_far { type filter hook egress device "${dev}" priority 0; meta l4proto udp drop; }
}
`;
  await mustRun(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], { input: script });
}

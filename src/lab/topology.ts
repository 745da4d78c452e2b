// The lab's network plan as plain data: which hosts exist, which links join
// them and which addresses they carry. Kept free of side effects so the plan
// can be read (and reasoned about) apart from the code that builds it.
//
//   client  192.0.2.10 ─┐
//                       ├─ lan0 bridge in bastion (192.0.2.1)
//   outsider 192.0.2.66 ┘
//   one bastion:  bastion 203.0.113.1 ── target 203.0.113.10
//   two bastions: bastion 198.51.100.1 ── bastion2 198.51.100.2
//                 bastion2 203.0.113.1 ── target 203.0.113.10
//
// Only documentation ranges are used, and forwarding is off everywhere, so
// the client can reach the target only by hopping through the bastions.
// Every host also has a name under lab.test (RFC 6761 keeps .test out of real DNS).
//
// With LabOptions.ipv6 the target is IPv6-only (2001:db8::/32, static
// addresses, no router advertisements):
//   behind-bastion: the link to the target carries 2001:db8:113::1 ── 2001:db8:113::10
//                   and nothing else; the client stays IPv4-only, so the bastion
//                   in front of the target is dual-stack and the only way there.
//   direct:         that, and the LAN carries 2001:db8:2::/64 beside IPv4
//                   (client ::10, bastion ::1, outsider ::66), and the bastion
//                   routes IPv6 (only): the client reaches the target's IPv6
//                   address itself, with no jump host and no relay.

export type HostName = 'client' | 'bastion' | 'bastion2' | 'target' | 'outsider';

/** A link is named after the host at its far end (seen from the client's side). */
export type LinkName = 'client' | 'outsider' | 'bastion2' | 'target';

/** Where a lab has IPv6 (LabOptions.ipv6); see the drawing above. */
export type Ipv6Layout = 'behind-bastion' | 'direct';

/** One address family on a link. */
export interface LinkAddresses {
  /** CIDR on the near side, or undefined when the near side is a port of a bridge (the bridge has it). */
  nearCidr: string | undefined;
  farCidr: string;
  /** The far host's default route in this family: its neighbour on this link. */
  farGateway: string;
}

export interface LinkPlan {
  name: LinkName;
  /** The host nearer the client; the bridge, and drop rules, live here. */
  near: HostName;
  far: HostName;
  /** Interface names inside each namespace (only unique per namespace, so short and readable). */
  nearDev: string;
  farDev: string;
  /** IPv4 on this link, or undefined on an IPv6-only link. */
  ipv4: LinkAddresses | undefined;
  /** IPv6 (2001:db8::/32) on this link, or undefined on an IPv4-only link. */
  ipv6: LinkAddresses | undefined;
}

export interface HostPlan {
  name: HostName;
  /** Where the client side reaches this host's sshd (what known_hosts and the config name). */
  sshAddress: string;
  /** `<name>.lab.test`, which every lab namespace resolves to sshAddress. */
  dnsName: string;
  /** The host that can reach this one directly: used to probe its sshd from outside. */
  probeFrom: HostName | undefined;
  /** The jump chain from the client, nearest first (empty: the client reaches it itself). */
  via: HostName[];
  runsSshd: boolean;
}

export interface TopologyPlan {
  hosts: HostPlan[];
  links: LinkPlan[];
  /** Bridges to create, by namespace, with the addresses they carry (IPv4 first). */
  bridges: { host: HostName; dev: string; cidrs: string[] }[];
  /** Hosts that forward IPv6 between their links. Nothing forwards IPv4. */
  ipv6Routers: HostName[];
}

export const LAN_BRIDGE = 'lan0';
export const LAB_DOMAIN = 'lab.test';
export const CLIENT_ADDRESS = '192.0.2.10';
export const BASTION_LAN_ADDRESS = '192.0.2.1';
/** The LAN's IPv6 prefix in a `direct` lab: host N of 192.0.2.0/24 is LAN6_PREFIX + N there. */
export const LAN6_PREFIX = '2001:db8:2::';
/** The target's link when it is IPv6-only: the near bastion is ::1, the target ::10. */
export const TARGET6_PREFIX = '2001:db8:113::';

export function planTopology(bastions: 1 | 2, ipv6?: Ipv6Layout): TopologyPlan {
  if (ipv6 === 'direct' && bastions !== 1) {
    // Two routers would need a route between them; "direct" is about the client, not the hops.
    throw new Error("ipv6: 'direct' is a lab with one bastion (it routes IPv6 for the client)");
  }
  const lan6 = ipv6 === 'direct';
  const lan = (name: 'client' | 'outsider', host: number): LinkPlan => ({
    name,
    near: 'bastion',
    far: name,
    nearDev: `to-${name}`,
    farDev: 'eth0',
    ipv4: { nearCidr: undefined, farCidr: `192.0.2.${host}/24`, farGateway: BASTION_LAN_ADDRESS },
    ipv6: lan6
      ? { nearCidr: undefined, farCidr: `${LAN6_PREFIX}${host}/64`, farGateway: `${LAN6_PREFIX}1` }
      : undefined,
  });
  const links: LinkPlan[] = [lan('client', 10), lan('outsider', 66)];
  const targetNear: HostName = bastions === 2 ? 'bastion2' : 'bastion';
  if (bastions === 2) {
    links.push({
      name: 'bastion2',
      near: 'bastion',
      far: 'bastion2',
      nearDev: 'to-bastion2',
      farDev: 'eth0',
      ipv4: { nearCidr: '198.51.100.1/24', farCidr: '198.51.100.2/24', farGateway: '198.51.100.1' },
      ipv6: undefined,
    });
  }
  links.push({
    name: 'target',
    near: targetNear,
    far: 'target',
    nearDev: 'to-target',
    farDev: 'eth0',
    ipv4: ipv6
      ? undefined
      : { nearCidr: '203.0.113.1/24', farCidr: '203.0.113.10/24', farGateway: '203.0.113.1' },
    ipv6: ipv6
      ? {
          nearCidr: `${TARGET6_PREFIX}1/64`,
          farCidr: `${TARGET6_PREFIX}10/64`,
          farGateway: `${TARGET6_PREFIX}1`,
        }
      : undefined,
  });

  const hosts: Omit<HostPlan, 'dnsName'>[] = [
    { name: 'client', sshAddress: CLIENT_ADDRESS, probeFrom: undefined, via: [], runsSshd: false },
    { name: 'bastion', sshAddress: BASTION_LAN_ADDRESS, probeFrom: 'client', via: [], runsSshd: true },
  ];
  if (bastions === 2) {
    hosts.push({
      name: 'bastion2',
      sshAddress: '198.51.100.2',
      probeFrom: 'bastion',
      via: ['bastion'],
      runsSshd: true,
    });
  }
  const bastionsOnTheWay: HostName[] = bastions === 2 ? ['bastion', 'bastion2'] : ['bastion'];
  hosts.push(
    {
      name: 'target',
      sshAddress: ipv6 ? `${TARGET6_PREFIX}10` : '203.0.113.10',
      probeFrom: targetNear,
      via: ipv6 === 'direct' ? [] : bastionsOnTheWay,
      runsSshd: true,
    },
    { name: 'outsider', sshAddress: '192.0.2.66', probeFrom: 'bastion', via: [], runsSshd: true },
  );
  return {
    hosts: hosts.map((h) => ({ ...h, dnsName: dnsNameOf(h.name) })),
    links,
    bridges: [
      {
        host: 'bastion',
        dev: LAN_BRIDGE,
        cidrs: [`${BASTION_LAN_ADDRESS}/24`, ...(lan6 ? [`${LAN6_PREFIX}1/64`] : [])],
      },
    ],
    ipv6Routers: ipv6 === 'direct' ? ['bastion'] : [],
  };
}

/** A link's address families, IPv4 first. */
export function familiesOf(link: LinkPlan): LinkAddresses[] {
  return [link.ipv4, link.ipv6].filter((a): a is LinkAddresses => a !== undefined);
}

/** Every address a host carries, IPv4 before IPv6, for Lab.hosts. */
export function addressesOf(plan: TopologyPlan, host: HostName): string[] {
  const out: string[] = [];
  for (const b of plan.bridges) if (b.host === host) out.push(...b.cidrs.map(stripPrefix));
  for (const l of plan.links) {
    for (const a of familiesOf(l)) {
      if (l.near === host && a.nearCidr) out.push(stripPrefix(a.nearCidr));
      if (l.far === host) out.push(stripPrefix(a.farCidr));
    }
  }
  return [...out.filter((a) => !a.includes(':')), ...out.filter((a) => a.includes(':'))];
}

/** Hosts with any IPv6 address (their loopback gets ::1 too). */
export function ipv6Hosts(plan: TopologyPlan): HostName[] {
  return plan.hosts.map((h) => h.name).filter((h) => addressesOf(plan, h).some((a) => a.includes(':')));
}

export function dnsNameOf(host: HostName): string {
  return `${host}.${LAB_DOMAIN}`;
}

export function stripPrefix(cidr: string): string {
  return cidr.split('/')[0] ?? cidr;
}

/** The next free client address on the LAN, skipping the bastion and the outsider. */
export function nextClientAddress(current: string): string {
  const last = Number(current.split('.')[3]);
  let n = last + 1;
  while (n === 66 || n === 1 || n > 254) n = n > 254 ? 2 : n + 1;
  return `192.0.2.${n}`;
}

/** The client's IPv6 address on a dual-stack LAN, for its IPv4 address there (the same host number). */
export function lanIpv6For(ipv4: string): string {
  const n = ipv4.split('.')[3] ?? '';
  if (!/^192\.0\.2\.\d{1,3}$/.test(ipv4)) throw new Error(`${ipv4} is not an address in 192.0.2.0/24`);
  return `${LAN6_PREFIX}${n}`;
}

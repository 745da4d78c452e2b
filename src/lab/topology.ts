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

export type HostName = 'client' | 'bastion' | 'bastion2' | 'target' | 'outsider';

/** A link is named after the host at its far end (seen from the client's side). */
export type LinkName = 'client' | 'outsider' | 'bastion2' | 'target';

export interface LinkPlan {
  name: LinkName;
  /** The host nearer the client; the bridge, and drop rules, live here. */
  near: HostName;
  far: HostName;
  /** Interface names inside each namespace (only unique per namespace, so short and readable). */
  nearDev: string;
  farDev: string;
  /** CIDR on the near side, or undefined when the near side is a port of the lan0 bridge. */
  nearCidr: string | undefined;
  farCidr: string;
  /** The far host's default route: its neighbour on this link. */
  farGateway: string;
}

export interface HostPlan {
  name: HostName;
  /** Where the client side reaches this host's sshd (what known_hosts and the config name). */
  sshAddress: string;
  /** `<name>.lab.test`, which every lab namespace resolves to sshAddress. */
  dnsName: string;
  /** The host that can reach this one directly: used to probe its sshd from outside. */
  probeFrom: HostName | undefined;
  /** The jump chain from the client, nearest first. */
  via: HostName[];
  runsSshd: boolean;
}

export interface TopologyPlan {
  hosts: HostPlan[];
  links: LinkPlan[];
  /** Bridges to create, by namespace, with the address they carry. */
  bridges: { host: HostName; dev: string; cidr: string }[];
}

export const LAN_BRIDGE = 'lan0';
export const LAB_DOMAIN = 'lab.test';
export const CLIENT_ADDRESS = '192.0.2.10';
export const BASTION_LAN_ADDRESS = '192.0.2.1';

export function planTopology(bastions: 1 | 2): TopologyPlan {
  const lan = (name: 'client' | 'outsider', address: string): LinkPlan => ({
    name,
    near: 'bastion',
    far: name,
    nearDev: `to-${name}`,
    farDev: 'eth0',
    nearCidr: undefined,
    farCidr: `${address}/24`,
    farGateway: BASTION_LAN_ADDRESS,
  });
  const links: LinkPlan[] = [lan('client', CLIENT_ADDRESS), lan('outsider', '192.0.2.66')];
  const targetNear: HostName = bastions === 2 ? 'bastion2' : 'bastion';
  if (bastions === 2) {
    links.push({
      name: 'bastion2',
      near: 'bastion',
      far: 'bastion2',
      nearDev: 'to-bastion2',
      farDev: 'eth0',
      nearCidr: '198.51.100.1/24',
      farCidr: '198.51.100.2/24',
      farGateway: '198.51.100.1',
    });
  }
  links.push({
    name: 'target',
    near: targetNear,
    far: 'target',
    nearDev: 'to-target',
    farDev: 'eth0',
    nearCidr: '203.0.113.1/24',
    farCidr: '203.0.113.10/24',
    farGateway: '203.0.113.1',
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
  hosts.push(
    {
      name: 'target',
      sshAddress: '203.0.113.10',
      probeFrom: targetNear,
      via: bastions === 2 ? ['bastion', 'bastion2'] : ['bastion'],
      runsSshd: true,
    },
    { name: 'outsider', sshAddress: '192.0.2.66', probeFrom: 'bastion', via: [], runsSshd: true },
  );
  return {
    hosts: hosts.map((h) => ({ ...h, dnsName: dnsNameOf(h.name) })),
    links,
    bridges: [{ host: 'bastion', dev: LAN_BRIDGE, cidr: `${BASTION_LAN_ADDRESS}/24` }],
  };
}

/** Every address a host carries, for Lab.hosts. */
export function addressesOf(plan: TopologyPlan, host: HostName): string[] {
  const out: string[] = [];
  for (const b of plan.bridges) if (b.host === host) out.push(stripPrefix(b.cidr));
  for (const l of plan.links) {
    if (l.near === host && l.nearCidr) out.push(stripPrefix(l.nearCidr));
    if (l.far === host) out.push(stripPrefix(l.farCidr));
  }
  return out;
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

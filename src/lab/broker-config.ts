// The ssh_config (and its known_hosts) a user of an access broker would have:
// a Host alias whose HostName resolves nowhere and whose ProxyCommand is the
// broker, and hosts behind a brokered first hop reached with ProxyJump.

import { pickBrokered } from './broker.js';
import type { HostName } from './topology.js';

export interface BrokerHostEntry {
  /** What the user types (`ssh devbox-broker`): the `Host` line. */
  alias: string;
  /** The brokered lab host (LabOptions.broker); default the first of them. */
  host?: HostName;
  /**
   * HostName, the name ssh checks the host key under; default
   * `i-0<runid>-<host>.broker.internal`. It resolves in no lab namespace.
   */
  hostName?: string;
  /** Default the working bridge (Lab.brokerProxyCommand); Lab.brokerFaultCommand() for a failing broker. */
  proxyCommand?: string;
}

export interface BrokerJumpEntry {
  alias: string;
  /** A lab host with sshd that the hop can reach. */
  host: HostName;
  /** The alias, among `hosts`, of the brokered first hop. */
  via: string;
  /** Default the host's lab.test name, which the hop resolves and the lab's known_hosts has. */
  hostName?: string;
}

export interface BrokerSshConfigOptions {
  hosts: BrokerHostEntry[];
  /** Hosts reached with ProxyJump through a brokered first hop. */
  jumps?: BrokerJumpEntry[];
  /** For the client user: its key and known_hosts, written in its own dir and owned by it. */
  clientUser?: boolean;
  /** File name (letters, digits, `._-`); default broker_ssh_config. Its known_hosts is `<name>.known_hosts`. */
  name?: string;
  /** ssh's ConnectTimeout (it also bounds the wait for the banner through a ProxyCommand); default 5. */
  connectTimeout?: number;
}

export interface BrokerSshConfig {
  path: string;
  text: string;
  knownHostsFile: string;
}

/** What the Lab knows and the config needs. */
export interface BrokerConfigContext {
  runId: string;
  brokered: readonly HostName[];
  servers: readonly HostName[];
  dnsName(host: HostName): string;
  proxyCommand(host: HostName): string;
  /** "ssh-ed25519 AAAA… comment" */
  hostPublicKey(host: HostName): string;
  keyFile: string;
  /** The known_hosts whose lines are kept (the hosts behind a jump are checked there). */
  knownHostsText: string;
  /** Writes a file (0600, for whoever runs ssh) and returns its path. */
  write(name: string, text: string): string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function writeBrokerSshConfig(ctx: BrokerConfigContext, o: BrokerSshConfigOptions): BrokerSshConfig {
  const name = o.name ?? 'broker_ssh_config';
  if (!NAME.test(name)) throw new Error(`brokerSshConfig: bad file name "${name}"`);
  const connectTimeout = o.connectTimeout ?? 5;
  if (!Number.isInteger(connectTimeout) || connectTimeout < 1)
    throw new Error(`brokerSshConfig: connectTimeout must be a whole number of seconds`);
  const hosts = o.hosts.map((e) => {
    const host = pickBrokered(ctx.brokered, e.host);
    const hostName = e.hostName ?? `i-0${ctx.runId}-${host}.broker.internal`;
    const proxyCommand = e.proxyCommand ?? ctx.proxyCommand(host);
    if (/[\r\n]/.test(proxyCommand)) throw new Error('brokerSshConfig: a ProxyCommand must be one line');
    return { alias: e.alias, host, hostName, proxyCommand };
  });
  const jumps = (o.jumps ?? []).map((j) => {
    if (!ctx.servers.includes(j.host)) throw new Error(`brokerSshConfig: "${j.host}" has no sshd`);
    if (!hosts.some((h) => h.alias === j.via))
      throw new Error(`brokerSshConfig: "${j.alias}" jumps via "${j.via}", which is not one of hosts`);
    return { alias: j.alias, hostName: j.hostName ?? ctx.dnsName(j.host), via: j.via };
  });
  const aliases = [...hosts, ...jumps].map((e) => e.alias);
  for (const a of aliases) if (!NAME.test(a)) throw new Error(`brokerSshConfig: bad alias "${a}"`);
  for (const n of [...hosts, ...jumps].map((e) => e.hostName))
    if (!NAME.test(n)) throw new Error(`brokerSshConfig: bad HostName "${n}"`);
  if (new Set(aliases).size !== aliases.length) throw new Error('brokerSshConfig: an alias is used twice');

  // Under the name ssh checks (HostName, port 22): what a user pastes from the broker's console.
  const keyPart = (k: string): string => k.split(/\s+/).slice(0, 2).join(' ');
  const knownHosts = [
    ...hosts.map((h) => `${h.hostName} ${keyPart(ctx.hostPublicKey(h.host))}\n`),
    ctx.knownHostsText,
  ].join('');
  const knownHostsFile = ctx.write(`${name}.known_hosts`, knownHosts);
  const common = ['  User root', `  IdentityFile ${ctx.keyFile}`, `  UserKnownHostsFile ${knownHostsFile}`];
  const text = [
    `# moshctl lab ${ctx.runId}: hosts behind an access broker (a ProxyCommand; no network path)`,
    ...hosts.flatMap((h) => [
      `Host ${h.alias}`,
      `  HostName ${h.hostName}`,
      `  ProxyCommand ${h.proxyCommand}`,
      ...common,
      '',
    ]),
    ...jumps.flatMap((j) => [
      `Host ${j.alias}`,
      `  HostName ${j.hostName}`,
      `  ProxyJump ${j.via}`,
      ...common,
      '',
    ]),
    'Host *',
    '  IdentitiesOnly yes',
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    '  UpdateHostKeys no',
    '  BatchMode yes',
    `  ConnectTimeout ${connectTimeout}`,
    '',
  ].join('\n');
  return { path: ctx.write(name, text), text, knownHostsFile };
}

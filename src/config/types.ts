// The config after interpolation, defaults and checks: what the planner and
// executor consume. Raw YAML shapes stay inside src/config.

export interface PortRange {
  from: number;
  to: number;
}

export interface MoshSettings {
  /** mosh-server -p FROM:TO */
  server_ports: PortRange;
  /** MOSH_SERVER_NETWORK_TMOUT, seconds; also the relays' idle timeout. */
  network_timeout: number;
  /** MOSH_SERVER_SIGNAL_TMOUT, seconds. */
  signal_timeout: number;
  /** Passed as `mosh-server new -l LANG=<locale>`; mosh needs a UTF-8 locale. */
  locale: string;
}

export const relayRuntimes = ['auto', 'python3', 'socat', 'nc'] as const;
export type RelayRuntime = (typeof relayRuntimes)[number];

export interface RelaySettings {
  /** Where this host may listen for UDP when it relays for a host behind it. */
  ports: PortRange;
  runtime: RelayRuntime;
}

export interface HostConfig {
  name: string;
  address: string;
  port: number;
  /** Never empty: an empty or missing user means the local user name, as with ssh. */
  user: string;
  /** Absolute path (`~` expanded), or undefined to rely on the ssh agent only. */
  identity_file: string | undefined;
  /** Absolute path (`~` expanded). */
  known_hosts: string;
  /** The full jump chain to this host, client side first (a hop's own `via` expanded). */
  chain: string[];
  relay: RelaySettings;
  mosh: MoshSettings;
}

/** What it takes to reach a host over ssh: all the ssh layer and teardown need. */
export type SshHost = Pick<
  HostConfig,
  'name' | 'address' | 'port' | 'user' | 'identity_file' | 'known_hosts'
>;

export interface ResolvedConfig {
  version: 1;
  /** The files merged, in order, for messages and for the state record. */
  files: string[];
  hosts: Record<string, HostConfig>;
}

export function formatPortRange(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

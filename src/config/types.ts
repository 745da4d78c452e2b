// The config after interpolation, defaults and checks: what the planner and
// executor consume. Raw YAML shapes stay inside src/config.
import type { ForwardSpec } from '../forward/types.js';

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
  /** What mosh-server runs the shell in: tmux or screen keep it for the next `up` (mosh cannot reattach). */
  session: SessionKeeper;
  /** How mosh's datagrams travel: udp through relays, or tcp inside the ssh chain (no relays, no UDP needed). */
  transport: MoshTransport;
  /** Where mosh-server listens, as mosh's --bind-server: `ssh` (-s), `any`, or an IP address (-i). */
  bind_server: BindServer;
  /** mosh-server on the target, as mosh's --server: a path (`~/` is the remote home) or a name on PATH. */
  server: string;
  /** mosh-client on this machine: an absolute path, or a name on PATH. */
  client: string;
  /** MOSH_PREDICTION_DISPLAY for mosh-client (mosh --predict); unset: mosh-client's own (adaptive, or the environment's). */
  predict?: PredictMode;
  /** MOSH_PREDICTION_OVERWRITE=yes (mosh --predict-overwrite). */
  predict_overwrite: boolean;
  /** MOSH_NO_TERM_INIT=1 (mosh --no-init): no alternate screen, the scrollback keeps the session's output. */
  no_init: boolean;
}

/** mosh-client's local echo, as mosh --predict. */
export type PredictMode = 'adaptive' | 'always' | 'never' | 'experimental';

/** `ssh`: where the ssh connection came in (`-s`); `any`: no option; else an IPv4 or IPv6 literal (`-i`). */
export type BindServer = 'ssh' | 'any' | (string & {});

export const moshTransports = ['udp', 'tcp', 'auto'] as const;
export type MoshTransport = (typeof moshTransports)[number];

export const sessionKeepers = ['none', 'tmux', 'screen'] as const;
/** none: the shell is mosh-server's child and ends with it; tmux, screen: the shell outlives a lost client. */
export type SessionKeeper = (typeof sessionKeepers)[number];

export const relayRuntimes = ['auto', 'python3', 'perl', 'socat', 'nc'] as const;
export type RelayRuntime = (typeof relayRuntimes)[number];

export interface RelaySettings {
  /** Where this host may listen for UDP when it relays for a host behind it. */
  ports: PortRange;
  runtime: RelayRuntime;
}

export const sshClients = ['ssh2', 'openssh'] as const;
/** ssh2: built in, needs nothing installed. openssh: the user's own `ssh`, one ControlMaster per hop. */
export type SshClientKind = (typeof sshClients)[number];

export const hostKeyPolicies = ['strict', 'accept-new'] as const;
/** strict: only keys already known; accept-new: record a new host's key, refuse a changed one (as OpenSSH). */
export type HostKeyPolicy = (typeof hostKeyPolicies)[number];

/** The source of a value moshctl chose by itself (ssh_client): `chosen: WHY`. */
export const CHOSEN = 'chosen';

/** Where a resolved value came from, for `config --resolved` and messages. */
export type ValueSource = string;

/**
 * What it takes to reach a host over ssh: all the ssh layer, teardown and a
 * state record need. Values come from moshproxy.yaml, else ssh_config (as
 * `ssh -G` resolves it), else OpenSSH's defaults.
 */
export interface SshHost {
  /** moshctl's name for the host: messages, records, the command line. */
  name: string;
  /**
   * The name `ssh` is given for this host: ssh_config's Host and Match blocks
   * match it (`ssh -G ssh_name`), and the openssh client is invoked with it.
   * The address for a moshproxy.yaml host, the name itself for an ssh_config host.
   */
  ssh_name: string;
  /** HostName: what TCP connects to, as the previous hop (or this machine) resolves it. */
  address: string;
  port: number;
  /** Never empty: an empty or missing user means the local user name, as with ssh. */
  user: string;
  /** Absolute paths of private keys to offer, in order (defaults: only those that exist). */
  identity_files: string[];
  /** Absolute paths of OpenSSH user certificates (CertificateFile, or `<key>-cert.pub` beside a key). */
  certificate_files: string[];
  /** User known_hosts files, absolute; accept-new records new keys in the first. */
  known_hosts: string[];
  /** System-wide known_hosts files, read but never written. */
  global_known_hosts: string[];
  /** HostKeyAlias: the name host keys are looked up under instead of the address. */
  host_key_alias: string | undefined;
  host_key_policy: HostKeyPolicy;
  /** ssh-agent socket; undefined means $SSH_AUTH_SOCK, 'none' means no agent. */
  identity_agent: string | undefined;
  /** Seconds to reach and log in to the host (prompts aside). */
  connect_timeout: number;
  /** Seconds between keepalives; 0 turns them off. */
  server_alive_interval: number;
  /** ssh_config's ProxyCommand for this host, if any (openssh only). */
  proxy_command: string | undefined;
  ssh_client: SshClientKind;
  /** HashKnownHosts: a key recorded under accept-new is written hashed. */
  hash_known_hosts: boolean;
}

export interface HostConfig extends SshHost {
  /**
   * Port forwards for a session to this host as target: moshproxy.yaml's
   * `forward:` (the host's, else `defaults:`), else ssh_config's LocalForward,
   * RemoteForward, DynamicForward (as `ssh -G` reports them); `up -L/-R/-D`
   * add to them. Each names where it came from.
   */
  forwards: ForwardSpec[];
  /** Agent forwarding to this host as target: forward_agent, else ssh_config's ForwardAgent; `up -A` sets it. */
  forward_agent: boolean;
  /** forward.exit_on_failure, else ssh_config's ExitOnForwardFailure: `up` fails when a forward cannot be set up, instead of warning. */
  exit_on_forward_failure: boolean;
  /**
   * ssh_config's GatewayPorts: a local or dynamic forward without a bind
   * address listens on every interface (already so in `forwards`; the
   * planner applies it to `up -L` and `-D` too, as ssh does).
   */
  gateway_ports: boolean;
  /** ssh_config forwards moshctl left out, and why (ssh's reverse SOCKS, a relative socket path); `plan` and `up` print them. */
  forward_notes: string[];
  /** moshproxy.yaml when the host is declared there (ssh_config may fill gaps), else ssh_config. */
  origin: 'moshproxy' | 'ssh_config';
  /** The full jump chain to this host, client side first (a hop's own `via` expanded). */
  chain: string[];
  relay: RelaySettings;
  mosh: MoshSettings;
  /**
   * For each resolved field: `file:line`, `ssh_config`, or `default`. `transport`
   * is there only when moshproxy.yaml sets mosh.transport: else moshctl chooses.
   */
  sources: Partial<
    Record<
      | keyof SshHost
      | 'chain'
      | 'transport'
      | 'forwards'
      | 'forward_agent'
      | 'exit_on_forward_failure'
      | 'gateway_ports',
      ValueSource
    >
  >;
}

/** The fields of SshHost, for copying a host into a record without the rest. */
export const sshHostFields = [
  'name',
  'ssh_name',
  'address',
  'port',
  'user',
  'identity_files',
  'certificate_files',
  'known_hosts',
  'global_known_hosts',
  'host_key_alias',
  'host_key_policy',
  'identity_agent',
  'connect_timeout',
  'server_alive_interval',
  'proxy_command',
  'ssh_client',
  'hash_known_hosts',
] as const satisfies readonly (keyof SshHost)[];

export function toSshHost(h: SshHost): SshHost {
  return Object.fromEntries(sshHostFields.map((f) => [f, h[f]])) as unknown as SshHost;
}

export interface ResolvedConfig {
  version: 1;
  /** The files merged, in order, for messages and for the state record. */
  files: string[];
  hosts: Record<string, HostConfig>;
}

export function formatPortRange(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

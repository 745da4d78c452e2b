// Fills defaults into checked data. A host's ssh settings come from three
// layers, first found wins: moshproxy.yaml (the host, then `defaults:`), then
// ssh_config as `ssh -G` resolves it, then OpenSSH's own defaults. This file
// reads the first layer and merges the three; running `ssh -G` is hosts.ts's.
// Runs only on data that passed the schema and the rules, so it trusts shapes.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { resolveChain, type ViaMap } from './chains.js';
import { declareForwards, resolveForwards, type DeclaredForwards, type RawForwarding } from './forwards.js';
import { parsePortRange } from './ports.js';
import type { Origins } from './source.js';
import { pointer } from './source.js';
import {
  DEFAULT_GLOBAL_KNOWN_HOSTS,
  DEFAULT_IDENTITIES,
  DEFAULT_USER_KNOWN_HOSTS,
  expandSshPath,
  localUser,
  type LocalUser,
  type SshGValues,
} from './ssh-config.js';
import type {
  BindServer,
  HostConfig,
  HostKeyPolicy,
  MoshSettings,
  MoshTransport,
  PortRange,
  PredictMode,
  RelayRuntime,
  ResolvedConfig,
  SessionKeeper,
  SshClientKind,
  SshHost,
} from './types.js';

export const builtins = {
  port: 22,
  connect_timeout: 10,
  server_alive_interval: 15,
  ssh_client: 'ssh2' as SshClientKind,
  host_key_policy: 'strict' as HostKeyPolicy,
  mosh: {
    server_ports: '60000-61000',
    network_timeout: 86400,
    signal_timeout: 60,
    locale: 'C.UTF-8',
    session: 'none' as SessionKeeper,
    transport: 'udp' as MoshTransport,
    bind_server: 'ssh' as BindServer,
    server: 'mosh-server',
    client: 'mosh-client',
    predict_overwrite: false,
    no_init: false,
  },
  relay: { ports: '60000-61000', runtime: 'auto' as RelayRuntime },
} as const;

interface RawMosh {
  server_ports?: string | number;
  network_timeout?: number;
  signal_timeout?: number;
  locale?: string;
  session?: SessionKeeper;
  transport?: MoshTransport;
  bind_server?: BindServer;
  server?: string;
  client?: string;
  predict?: PredictMode;
  predict_overwrite?: boolean;
  no_init?: boolean;
}
interface RawRelay {
  ports?: string | number;
  runtime?: RelayRuntime;
}
interface RawSsh extends RawForwarding {
  port?: number;
  user?: string;
  identity_file?: string | string[];
  known_hosts?: string | string[];
  ssh_client?: SshClientKind;
  host_key_policy?: HostKeyPolicy;
  connect_timeout?: number;
}
interface RawHost extends RawSsh {
  address: string;
  via?: string[];
  relay?: RawRelay;
  mosh?: RawMosh;
}
export interface RawConfig {
  version: 1;
  defaults?: RawSsh & { relay?: RawRelay };
  mosh?: RawMosh;
  /** Optional: without it, every name is looked up in ssh_config. */
  hosts?: Record<string, RawHost>;
}

export interface ResolveContext {
  files: string[];
  origins: Origins;
  /** Who runs moshctl: the user name when nothing names one. */
  localUser?: string;
  /** `~` in moshproxy.yaml means $HOME, as in a shell. */
  home?: string;
}

/** A value moshproxy.yaml set, with where (file:line). */
interface Declared<T> {
  value: T;
  source: string;
}

/** What moshproxy.yaml says of one host's ssh settings; unset fields come from ssh_config or defaults. */
export interface DeclaredSsh {
  port?: Declared<number>;
  user?: Declared<string>;
  identity_files?: Declared<string[]>;
  known_hosts?: Declared<string[]>;
  ssh_client?: Declared<SshClientKind>;
  host_key_policy?: Declared<HostKeyPolicy>;
  connect_timeout?: Declared<number>;
}

/** A host without its ssh settings filled: moshproxy.yaml's part of a HostConfig. */
export interface DeclaredHost {
  name: string;
  address: string;
  chain: string[];
  relay: HostConfig['relay'];
  mosh: MoshSettings;
  ssh: DeclaredSsh;
  /** forward:, forward_agent: of the host, else of `defaults:`. */
  forward: DeclaredForwards;
  /** Where `address` was written. */
  addressSource: string;
  /** Where mosh.transport was written, if anywhere: else moshctl chooses the transport. */
  transportSource?: string;
}

export interface DeclaredConfig {
  /** The hosts of moshproxy.yaml, in file order. */
  names: readonly string[];
  /** One host, worked out when first asked for: a command needs a route's hosts, not 20 000. */
  host(name: string): DeclaredHost | undefined;
  /** What a host only ssh_config knows gets from moshproxy.yaml: `defaults:` and the file's `mosh:`. */
  forOthers: Pick<DeclaredHost, 'relay' | 'mosh' | 'ssh' | 'forward' | 'transportSource'>;
}

export function declareHosts(raw: RawConfig, ctx: ResolveContext): DeclaredConfig {
  const home = ctx.home ?? homedir();
  const d = raw.defaults ?? {};
  const rawHosts = raw.hosts ?? {};
  const via: ViaMap = {
    get: (n) => (Object.hasOwn(rawHosts, n) ? (rawHosts[n]?.via ?? []) : undefined),
    has: (n) => Object.hasOwn(rawHosts, n),
  };
  const where = (ptr: string): string => {
    const o = ctx.origins.get(ptr)?.value;
    return o ? `${o.file}:${o.line}` : (ctx.files[0] ?? 'moshproxy.yaml');
  };
  const ssh = (h: RawSsh, hostPtr: string | undefined): DeclaredSsh => {
    const out: DeclaredSsh = {};
    const pick = <K extends keyof RawSsh>(
      k: K,
    ): { value: NonNullable<RawSsh[K]>; ptr: string } | undefined => {
      if (hostPtr && h[k] !== undefined && h[k] !== '') return { value: h[k], ptr: pointer(hostPtr, k) };
      if (d[k] !== undefined && d[k] !== '') return { value: d[k], ptr: `/defaults/${k}` };
      return undefined;
    };
    // A relative path is relative to the file that wrote it, not to the working directory.
    const paths = (k: 'identity_file' | 'known_hosts'): Declared<string[]> | undefined => {
      const p = pick(k);
      if (!p) return undefined;
      const list = Array.isArray(p.value) ? p.value : [p.value];
      const base = dirname(ctx.origins.get(p.ptr)?.value.file ?? ctx.files[0] ?? '.');
      return { value: list.map((v) => expandPath(v, home, base)), source: where(p.ptr) };
    };
    for (const k of ['port', 'user', 'ssh_client', 'host_key_policy', 'connect_timeout'] as const) {
      const p = pick(k);
      if (p) (out as Record<string, Declared<unknown>>)[k] = { value: p.value, source: where(p.ptr) };
    }
    const ids = paths('identity_file');
    if (ids) out.identity_files = ids;
    const kh = paths('known_hosts');
    if (kh) out.known_hosts = kh;
    return out;
  };
  const relay = (h: RawHost | undefined): HostConfig['relay'] => ({
    ports: range(h?.relay?.ports ?? d.relay?.ports ?? builtins.relay.ports),
    runtime: h?.relay?.runtime ?? d.relay?.runtime ?? builtins.relay.runtime,
  });
  /** A host's own mosh.transport, else the file's; undefined when neither sets it. */
  const transportSource = (
    h: RawHost | undefined,
    hostPtr: string | undefined,
  ): { transportSource?: string } =>
    h?.mosh?.transport !== undefined && hostPtr
      ? { transportSource: where(`${pointer(hostPtr, 'mosh')}/transport`) }
      : raw.mosh?.transport !== undefined
        ? { transportSource: where('/mosh/transport') }
        : {};
  /**
   * mosh settings; mosh.client is a path on this machine: `~` is $HOME, and a
   * relative path is relative to the file that wrote it. A name without `/`
   * stays a name, looked up on PATH.
   */
  const moshOf = (h: RawHost | undefined, hostPtr: string | undefined): MoshSettings => {
    const m = mosh(h?.mosh, raw.mosh);
    if (!m.client.includes('/') && !m.client.startsWith('~')) return m;
    const ptr =
      h?.mosh?.client !== undefined && hostPtr ? `${pointer(hostPtr, 'mosh')}/client` : '/mosh/client';
    const base = dirname(ctx.origins.get(ptr)?.value.file ?? ctx.files[0] ?? '.');
    return { ...m, client: expandPath(m.client, home, base) };
  };
  const hosts = new Map<string, DeclaredHost>();
  const host = (name: string): DeclaredHost | undefined => {
    const done = hosts.get(name);
    if (done || !Object.hasOwn(rawHosts, name)) return done;
    const h = rawHosts[name] as RawHost;
    const hostPtr = pointer('/hosts', name);
    const chain = resolveChain(name, via);
    if (!chain.ok) throw new Error(`bug: chain of ${name} not checked before resolve`);
    const declared: DeclaredHost = {
      name,
      address: h.address,
      chain: chain.chain,
      relay: relay(h),
      mosh: moshOf(h, hostPtr),
      ssh: ssh(h, hostPtr),
      forward: declareForwards(h, hostPtr, d, where),
      addressSource: where(pointer(hostPtr, 'address')),
      ...transportSource(h, hostPtr),
    };
    hosts.set(name, declared);
    return declared;
  };
  return {
    names: Object.keys(rawHosts),
    host,
    forOthers: {
      relay: relay(undefined),
      mosh: moshOf(undefined, undefined),
      ssh: ssh({}, undefined),
      forward: declareForwards(undefined, undefined, d, where),
      ...transportSource(undefined, undefined),
    },
  };
}

export interface CompleteContext {
  local?: LocalUser;
  /** Whether a file exists: default identities count only when they do. */
  exists?: (path: string) => boolean;
}

/**
 * One host's ssh settings, layer by layer: moshproxy.yaml, then what `ssh -G`
 * printed (undefined when ssh_config was not consulted), then OpenSSH's defaults.
 */
export function completeHost(
  base: Omit<DeclaredHost, 'addressSource'> & { addressSource?: string },
  g: SshGValues | undefined,
  origin: HostConfig['origin'],
  ctx: CompleteContext = {},
): HostConfig {
  const local = ctx.local ?? localUser();
  const exists = ctx.exists ?? existsSync;
  const decl = base.ssh;
  const sources: HostConfig['sources'] = {};
  const take = <K extends keyof SshHost>(
    k: K,
    declared: Declared<SshHost[K]> | undefined,
    fromG: SshHost[K] | undefined,
    fallback: SshHost[K],
  ): SshHost[K] => {
    if (declared) {
      sources[k] = declared.source;
      return declared.value;
    }
    if (fromG !== undefined) {
      sources[k] = 'ssh_config';
      return fromG;
    }
    sources[k] = 'default';
    return fallback;
  };
  // ssh_config's HostName maps the name ssh is given, for `ssh ADDRESS` as for `ssh NAME`.
  // (ssh lower-cases the name it was given, so only a real mapping differs in more than case.)
  const mapped =
    g?.hostname !== undefined && g.hostname.toLowerCase() !== base.address.toLowerCase()
      ? g.hostname
      : undefined;
  const address = mapped ?? base.address;
  sources.address = mapped ? 'ssh_config' : (base.addressSource ?? 'default');
  // ssh -G always prints user and port; they count as ssh_config's only when they differ from the defaults.
  const port = take(
    'port',
    decl.port,
    g?.port !== undefined && g.port !== 22 ? g.port : undefined,
    builtins.port,
  );
  const user = take('user', decl.user, g?.user && g.user !== local.name ? g.user : undefined, local.name);
  const expand = (p: string): string =>
    expandSshPath(p, { local, host: address, user, port, original: base.name });
  const sameList = (a: string[], b: string[]): boolean =>
    a.length === b.length && a.every((x, i) => x === b[i]);

  // Identities: named ones are used as named; OpenSSH's defaults only where they exist.
  const gIds =
    g && g.identityfile.length > 0 && !sameList(g.identityfile, DEFAULT_IDENTITIES)
      ? g.identityfile.map(expand)
      : undefined;
  const defaultIds = DEFAULT_IDENTITIES.map(expand).filter((p) => exists(p));
  const identity_files = take('identity_files', decl.identity_files, gIds, defaultIds);
  const gCerts = g && g.certificatefile.length > 0 ? g.certificatefile.map(expand) : undefined;
  // OpenSSH also loads `<key>-cert.pub` beside each identity it offers.
  const besides = identity_files.map((k) => `${k}-cert.pub`).filter((c) => exists(c));
  const certificate_files = take(
    'certificate_files',
    undefined,
    gCerts ? [...new Set([...gCerts, ...besides])] : besides.length > 0 ? besides : undefined,
    [],
  );

  const defaultKnown = DEFAULT_USER_KNOWN_HOSTS.map(expand);
  const gKnown = g && g.userknownhostsfile.length > 0 ? g.userknownhostsfile.map(expand) : undefined;
  const known_hosts = take(
    'known_hosts',
    decl.known_hosts,
    gKnown && !sameList(gKnown, defaultKnown) ? gKnown : undefined,
    defaultKnown,
  );
  const gGlobal = g && g.globalknownhostsfile.length > 0 ? g.globalknownhostsfile : undefined;
  const global_known_hosts = take(
    'global_known_hosts',
    undefined,
    gGlobal && !sameList(gGlobal, DEFAULT_GLOBAL_KNOWN_HOSTS) ? gGlobal : undefined,
    DEFAULT_GLOBAL_KNOWN_HOSTS,
  );

  const strict = g?.stricthostkeychecking;
  // ssh's default "ask" cannot ask here; an explicit accept-new (or no) lets new keys in, never changed ones.
  const gPolicy: HostKeyPolicy | undefined =
    strict === 'accept-new' || strict === 'no' || strict === 'false'
      ? 'accept-new'
      : strict === 'yes' || strict === 'true'
        ? 'strict'
        : undefined;
  const agent = g?.identityagent;
  const forwarding = resolveForwards(base.forward, g);
  Object.assign(sources, forwarding.sources);
  const host: HostConfig = {
    name: base.name,
    // For an ssh_config host `base.address` is the name as written; HostName is `address`.
    ssh_name: base.address,
    address,
    port,
    user,
    identity_files,
    certificate_files,
    known_hosts,
    global_known_hosts,
    host_key_alias: take('host_key_alias', undefined, g?.hostkeyalias, undefined),
    host_key_policy: take('host_key_policy', decl.host_key_policy, gPolicy, builtins.host_key_policy),
    identity_agent: take(
      'identity_agent',
      undefined,
      agent === undefined || agent === 'SSH_AUTH_SOCK'
        ? undefined
        : agent === 'none'
          ? 'none'
          : expand(agent),
      undefined,
    ),
    connect_timeout: take(
      'connect_timeout',
      decl.connect_timeout,
      g?.connecttimeout,
      builtins.connect_timeout,
    ),
    // moshctl needs keepalives to notice a dead hop; ssh's default 0 (off) counts as unset.
    server_alive_interval: take(
      'server_alive_interval',
      undefined,
      g?.serveraliveinterval || undefined,
      builtins.server_alive_interval,
    ),
    proxy_command: take('proxy_command', undefined, g?.proxycommand, undefined),
    ssh_client: take('ssh_client', decl.ssh_client, undefined, builtins.ssh_client),
    hash_known_hosts: g?.hashknownhosts ?? false,
    forwards: forwarding.forwards,
    forward_agent: forwarding.forward_agent,
    exit_on_forward_failure: forwarding.exit_on_forward_failure,
    gateway_ports: forwarding.gateway_ports,
    forward_notes: forwarding.forward_notes,
    origin,
    chain: base.chain,
    relay: base.relay,
    mosh: base.mosh,
    sources,
  };
  sources.chain = origin === 'ssh_config' ? 'ssh_config' : (base.addressSource ?? 'moshproxy.yaml');
  if (base.transportSource) sources.transport = base.transportSource;
  return host;
}

/** moshproxy.yaml's hosts completed with OpenSSH's defaults only: the view without running ssh. */
export function resolveConfig(
  declared: DeclaredConfig,
  ctx: Pick<ResolveContext, 'files' | 'localUser'>,
  complete: CompleteContext = {},
): ResolvedConfig {
  const local = complete.local ?? { ...localUser(), ...(ctx.localUser ? { name: ctx.localUser } : {}) };
  const hosts: Record<string, HostConfig> = {};
  for (const name of declared.names) {
    const d = declared.host(name);
    if (d) hosts[name] = completeHost(d, undefined, 'moshproxy', { ...complete, local });
  }
  return { version: 1, files: ctx.files, hosts };
}

function mosh(...layers: (RawMosh | undefined)[]): MoshSettings {
  const pick = <K extends keyof RawMosh>(k: K): RawMosh[K] => layers.find((l) => l?.[k] !== undefined)?.[k];
  return {
    server_ports: range(pick('server_ports') ?? builtins.mosh.server_ports),
    network_timeout: pick('network_timeout') ?? builtins.mosh.network_timeout,
    signal_timeout: pick('signal_timeout') ?? builtins.mosh.signal_timeout,
    locale: pick('locale') ?? builtins.mosh.locale,
    session: pick('session') ?? builtins.mosh.session,
    transport: pick('transport') ?? builtins.mosh.transport,
    bind_server: pick('bind_server') ?? builtins.mosh.bind_server,
    server: pick('server') ?? builtins.mosh.server,
    client: pick('client') ?? builtins.mosh.client,
    ...(pick('predict') !== undefined ? { predict: pick('predict') } : {}),
    predict_overwrite: pick('predict_overwrite') ?? builtins.mosh.predict_overwrite,
    no_init: pick('no_init') ?? builtins.mosh.no_init,
  };
}

function range(v: string | number): PortRange {
  const r = parsePortRange(v);
  if (!r.ok) throw new Error(`bug: port range ${v} not checked before resolve`);
  return r.range;
}

export function expandPath(p: string, home: string, base: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return resolvePath(home, p.slice(2));
  return isAbsolute(p) ? p : resolvePath(base, p);
}

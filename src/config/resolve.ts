// Fills defaults into checked data: host fields over `defaults`, host `mosh`
// over the file's `mosh`, and built-in values last. Runs only on data that
// passed the schema and the rules, so it may trust shapes.
import { homedir, userInfo } from 'node:os';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { resolveChain } from './chains.js';
import { parsePortRange } from './ports.js';
import type { Origins } from './source.js';
import { pointer } from './source.js';
import type { HostConfig, MoshSettings, PortRange, RelayRuntime, ResolvedConfig } from './types.js';

export const builtins = {
  port: 22,
  known_hosts: '~/.ssh/known_hosts',
  mosh: { server_ports: '60000-61000', network_timeout: 86400, signal_timeout: 60, locale: 'C.UTF-8' },
  relay: { ports: '60000-61000', runtime: 'auto' as RelayRuntime },
} as const;

interface RawMosh {
  server_ports?: string | number;
  network_timeout?: number;
  signal_timeout?: number;
  locale?: string;
}
interface RawRelay {
  ports?: string | number;
  runtime?: RelayRuntime;
}
interface RawHost {
  address: string;
  port?: number;
  user?: string;
  identity_file?: string;
  known_hosts?: string;
  via?: string[];
  relay?: RawRelay;
  mosh?: RawMosh;
}
export interface RawConfig {
  version: 1;
  defaults?: Omit<RawHost, 'address' | 'via' | 'mosh'>;
  mosh?: RawMosh;
  hosts: Record<string, RawHost>;
}

export interface ResolveContext {
  files: string[];
  origins: Origins;
  /** Who runs moshctl: the user name when the file leaves `user` empty. */
  localUser?: string;
  home?: string;
}

export function resolveConfig(raw: RawConfig, ctx: ResolveContext): ResolvedConfig {
  const localUser = ctx.localUser ?? userInfo().username;
  const home = ctx.home ?? homedir();
  const d = raw.defaults ?? {};
  const via = new Map(Object.entries(raw.hosts).map(([n, h]) => [n, h.via ?? []]));
  const hosts: Record<string, HostConfig> = {};
  for (const [name, h] of Object.entries(raw.hosts)) {
    const hostPtr = pointer('/hosts', name);
    // A relative path is relative to the file that wrote it, not to the working directory.
    const path = (field: 'identity_file' | 'known_hosts'): string | undefined => {
      const value = h[field] ?? d[field];
      if (value === undefined) return undefined;
      const ptr = h[field] !== undefined ? pointer(hostPtr, field) : `/defaults/${field}`;
      const base = dirname(ctx.origins.get(ptr)?.value.file ?? ctx.files[0] ?? '.');
      return expandPath(value, home, base);
    };
    const chain = resolveChain(name, via);
    if (!chain.ok) throw new Error(`bug: chain of ${name} not checked before resolve`);
    hosts[name] = {
      name,
      address: h.address,
      port: h.port ?? d.port ?? builtins.port,
      user: h.user || d.user || localUser,
      identity_file: path('identity_file'),
      known_hosts: path('known_hosts') ?? expandPath(builtins.known_hosts, home, '.'),
      chain: chain.chain,
      relay: {
        ports: range(h.relay?.ports ?? d.relay?.ports ?? builtins.relay.ports),
        runtime: h.relay?.runtime ?? d.relay?.runtime ?? builtins.relay.runtime,
      },
      mosh: mosh(h.mosh, raw.mosh),
    };
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

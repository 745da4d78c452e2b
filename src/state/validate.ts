// The shape `down` and `status` rely on, checked on every record read from
// disk: a hand-edited, truncated or foreign file must be reported with what is
// wrong, not crash them halfway (or send a signal to pid 0).
import { hostKeyPolicies, sshClients } from '../config/types.js';

type Check = (value: unknown, at: string, out: string[]) => void;

function kind(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return 'an object';
}

const expect =
  (what: string, ok: (v: unknown) => boolean): Check =>
  (v, at, out) => {
    if (!ok(v)) out.push(`${at}: expected ${what}, got ${kind(v)}`);
  };

const str = expect('a string', (v) => typeof v === 'string');
const bool = expect('true or false', (v) => typeof v === 'boolean');
const count = expect('a whole number ≥ 0', (v) => Number.isSafeInteger(v) && (v as number) >= 0);
const pid = expect('a pid (a whole number > 0)', (v) => Number.isSafeInteger(v) && (v as number) > 0);
const port = expect('a port', (v) => Number.isInteger(v) && (v as number) > 0 && (v as number) < 65536);
const seconds = expect('a number of seconds', (v) => typeof v === 'number' && v >= 0);
const digits = expect('clock ticks (digits)', (v) => typeof v === 'string' && /^\d+$/.test(v));
const id = expect(
  'a session id (letters, digits, ".", "_", "-")',
  (v) => typeof v === 'string' && /^[A-Za-z0-9._-]+$/.test(v),
);
const oneOf = (values: readonly string[]): Check =>
  expect(values.map((v) => `"${v}"`).join(' or '), (v) => values.includes(v as string));

const optional =
  (check: Check): Check =>
  (v, at, out) => {
    if (v !== undefined) check(v, at, out);
  };

const list =
  (item: Check): Check =>
  (v, at, out) => {
    if (Array.isArray(v)) v.forEach((x, i) => item(x, `${at}[${i}]`, out));
    else out.push(`${at}: expected a list, got ${kind(v)}`);
  };

const object =
  (fields: Record<string, Check>): Check =>
  (v, at, out) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      out.push(`${at || 'the file'}: expected an object, got ${kind(v)}`);
      return;
    }
    const o = v as Record<string, unknown>;
    for (const [k, check] of Object.entries(fields)) check(o[k], at ? `${at}.${k}` : k, out);
  };

const hop = object({
  name: str,
  ssh_name: str,
  address: str,
  port,
  user: str,
  identity_files: list(str),
  certificate_files: list(str),
  known_hosts: list(str),
  global_known_hosts: list(str),
  host_key_alias: optional(str),
  host_key_policy: oneOf(hostKeyPolicies),
  identity_agent: optional(str),
  connect_timeout: seconds,
  server_alive_interval: seconds,
  proxy_command: optional(str),
  ssh_client: oneOf(sshClients),
  hash_known_hosts: bool,
});

const started = expect(
  'a process start (digits: clock ticks after boot)',
  (v) => typeof v === 'string' && /^\d{1,20}$/.test(v),
);
const recordedProcess = { host: str, pid, port, started: optional(started) };

const record = object({
  version: count,
  id,
  name: str,
  configFiles: list(str),
  createdAt: str,
  pid,
  machine: str,
  bootId: optional(str),
  startTime: optional(digits),
  route: list(hop),
  server: optional(object(recordedProcess)),
  keeper: optional(object({ host: str, pid, started: optional(started) })),
  relays: list(object({ ...recordedProcess, runtime: str, restarts: optional(count) })),
  networkTimeout: seconds,
  detached: optional(bool),
  cleanup: optional(object({ pid: optional(pid), startTime: optional(digits), since: str })),
  forwards: optional(
    list(
      object({
        text: str,
        listening: bool,
        port: optional(count),
        open: count,
        total: count,
        broken: count,
        refused: count,
        lastError: optional(str),
      }),
    ),
  ),
  agent: optional(object({ host: str, socket: str, up: bool, lastError: optional(str) })),
  chain: optional(object({ up: bool, reconnects: count, lastError: optional(str), since: optional(str) })),
  path: optional(object({ via: oneOf(['udp', 'tcp']), since: str, changes: count, noReturn: optional(str) })),
});

/** What is wrong with a (current-version) record, one line each; empty when nothing is. */
export function recordProblems(value: unknown): string[] {
  const out: string[] = [];
  record(value, '', out);
  if (out.length > 0) return out;
  // Teardown reaches a process's host through the route: a host not on it could never be stopped.
  const r = value as {
    route: { name: string }[];
    server?: { host: string };
    keeper?: { host: string };
    relays: { host: string }[];
    agent?: { host: string };
  };
  const hosts = new Set(r.route.map((h) => h.name));
  const stray = [
    ...r.relays.map((x) => x.host),
    ...(r.server ? [r.server.host] : []),
    ...(r.keeper ? [r.keeper.host] : []),
    ...(r.agent ? [r.agent.host] : []),
  ].filter((h) => !hosts.has(h));
  return stray.map((h) => `a process on ${h}, which is not on its route`);
}

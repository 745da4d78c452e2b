// ssh's forward syntax (-L, -R, -D; LocalForward, RemoteForward,
// DynamicForward) read the way OpenSSH reads it (parse_fwd_field and
// parse_forward in its misc.c), then checked more strictly than ssh: a spec
// never reaches a shell, but its names and paths end up in protocol fields
// and, with the openssh client, in argv. The result is a ForwardSpec whose
// `text` ssh reads back with the same meaning.
import { isIP } from 'node:net';
import type { Endpoint, ForwardKind, ForwardSpec } from './types.js';

export type ParsedForward = { ok: true; spec: ForwardSpec } | { ok: false; message: string; hint: string };

export interface ForwardContext {
  /**
   * ssh_config's GatewayPorts yes: a local or dynamic forward written without
   * a bind address listens on every interface, as ssh binds it then.
   */
  gatewayPorts?: boolean;
}

export const FLAGS: Record<ForwardKind, string> = { local: '-L', remote: '-R', dynamic: '-D' };

const FORMS: Record<ForwardKind, string> = {
  local:
    '[bind_address:]port:host:hostport, [bind_address:]port:remote_socket, local_socket:host:hostport or local_socket:remote_socket',
  remote:
    '[bind_address:]port:host:hostport, [bind_address:]port:local_socket, remote_socket:host:hostport or remote_socket:local_socket',
  dynamic: '[bind_address:]port',
};

const EXAMPLES: Record<ForwardKind, string> = {
  local: 'e.g. 8080:localhost:80 (port 8080 here, to localhost:80 as the target reaches it)',
  remote: 'e.g. 9090:localhost:3000 (port 9090 on the target, to localhost:3000 here)',
  dynamic: 'e.g. 1080 (a SOCKS proxy on port 1080 here)',
};

/** sizeof(sun_path) on Linux, less the NUL: ssh refuses longer socket paths. */
const MAX_SOCKET_PATH = 107;

interface Field {
  arg: string;
  /** A `/` in it: ssh takes the field for a Unix socket path. */
  isPath: boolean;
}

/**
 * ssh's split of a spec into at most four `:`-separated fields: a field in
 * brackets is taken literally (an IPv6 address, a path with a colon), a
 * backslash escapes the next character elsewhere. Undefined where ssh fails
 * (an unclosed bracket, text left after four fields).
 */
function splitFields(spec: string): Field[] | undefined {
  const s = spec.replace(/^\s+/, '');
  const fields: Field[] = [];
  let i = 0;
  while (fields.length < 4 && i < s.length) {
    if (s[i] === '[') {
      const close = s.indexOf(']', i + 1);
      if (close < 0 || (close + 1 < s.length && s[close + 1] !== ':')) return undefined;
      const arg = s.slice(i + 1, close);
      fields.push({ arg, isPath: arg.includes('/') });
      i = close + 2;
      continue;
    }
    let arg = '';
    let isPath = false;
    for (; i < s.length; i++) {
      const c = s[i] as string;
      if (c === '\\') {
        i++;
        if (i >= s.length) return undefined;
        // Taken as it is: an escaped "/" does not make a path, as in ssh.
        arg += s[i] as string;
        continue;
      }
      if (c === ':') {
        i++;
        break;
      }
      if (c === '/') isPath = true;
      arg += c;
    }
    fields.push({ arg, isPath });
  }
  return i < s.length ? undefined : fields;
}

/** What ssh's parse_forward makes of the fields, before moshctl's own checks. */
interface Raw {
  listenHost?: string;
  listenPort?: string;
  listenPath?: string;
  connectHost?: string;
  connectPort?: string;
  connectPath?: string;
}

function interpret(fields: Field[], dynamic: boolean): Raw | undefined {
  const [a, b, c, d] = fields;
  if (dynamic) {
    if (fields.length === 1 && a && !a.isPath) return { listenPort: a.arg };
    if (fields.length === 2 && a && b && !a.isPath && !b.isPath)
      return { listenHost: a.arg, listenPort: b.arg };
    return undefined;
  }
  if (fields.length === 2 && a && b) {
    if (a.isPath && b.isPath) return { listenPath: a.arg, connectPath: b.arg };
    if (b.isPath) return { listenPort: a.arg, connectPath: b.arg };
    return undefined;
  }
  if (fields.length === 3 && a && b && c) {
    if (a.isPath) return { listenPath: a.arg, connectHost: b.arg, connectPort: c.arg };
    if (c.isPath) return { listenHost: a.arg, listenPort: b.arg, connectPath: c.arg };
    return { listenPort: a.arg, connectHost: b.arg, connectPort: c.arg };
  }
  if (fields.length === 4 && a && b && c && d)
    return { listenHost: a.arg, listenPort: b.arg, connectHost: c.arg, connectPort: d.arg };
  return undefined;
}

/**
 * One forward as ssh takes it after -L, -R or -D (`8080:localhost:80`), as
 * the ForwardSpec of `source` (`command line`, `file:line`, `ssh_config`).
 * Refuses what ssh refuses, and more: ssh's reverse SOCKS (-R with a port
 * alone), service names for ports, relative socket paths, names that are no
 * host name or IP address.
 */
export function parseForward(
  kind: ForwardKind,
  text: string,
  source: string,
  ctx: ForwardContext = {},
): ParsedForward {
  const shown = JSON.stringify(text);
  const fail = (message: string, hint: string = EXAMPLES[kind]): ParsedForward => ({
    ok: false,
    message: `${shown} ${message}`,
    hint,
  });
  if (/^\s*-[LRD]/.test(text))
    return fail(`starts with ssh's option`, `write the forward alone, without ${text.trim().slice(0, 2)}`);
  if (/^\s*$/.test(text)) return fail('is empty');
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\x00-\x1f\x7f]/.test(text)) return fail('holds a control character (a newline, a tab)');
  const old = /^\s*((?:[^/\s]+\/)?\d+\/[^/\s]+\/\d+)\s*$/.exec(text)?.[1];
  if (old !== undefined)
    return fail(
      'uses the "/" separator that OpenSSH dropped in 6.7 (a "/" now marks a socket path)',
      `write ${old
        .split('/')
        .map((f) => (f.includes(':') ? `[${f}]` : f))
        .join(':')}: ":" between the fields, an IPv6 address in brackets`,
    );
  const fields = splitFields(text);
  const raw = fields && interpret(fields, kind === 'dynamic');
  if (!raw) {
    const last = fields?.at(-1);
    if (
      kind === 'remote' &&
      fields &&
      fields.length <= 2 &&
      !fields.some((f) => f.isPath) &&
      last &&
      parsePort(last.arg) !== undefined
    )
      return fail(
        "is ssh's reverse SOCKS proxy (-R with a port alone), which moshctl does not do",
        'name where connections go instead, e.g. 9090:localhost:3000; for a SOCKS proxy on the target, run one here and forward to it (9090:localhost:1080)',
      );
    const v6 = /[0-9a-fA-F]*:[0-9a-fA-F]*:[0-9a-fA-F]*:/.test(text) && !text.includes('[');
    return fail(
      `is not a ${kind} forward: ssh takes ${FORMS[kind]}`,
      v6 ? 'an IPv6 address goes in brackets, e.g. [2001:db8::1]:80' : EXAMPLES[kind],
    );
  }
  let listen: ForwardSpec['listen'];
  if (raw.listenPath !== undefined) {
    const p = checkPath(raw.listenPath);
    if (p) return fail(p);
    listen = { path: raw.listenPath };
  } else {
    const port = parsePort(raw.listenPort ?? '');
    if (port === undefined) return fail(portProblem(raw.listenPort ?? ''), portHint(raw.listenPort ?? ''));
    if (port === 0 && kind !== 'remote')
      return fail(
        'listens on port 0, which ssh refuses here',
        'port 0 (a port the target chooses) is for -R only; name a port from 1 to 65535',
      );
    const host = bindHost(raw.listenHost, kind, ctx);
    if (host !== undefined && host !== '*' && !isHostName(host)) return fail(hostProblem(host));
    listen = host === undefined ? { port } : { host, port };
  }
  let to: Endpoint | undefined;
  if (raw.connectPath !== undefined) {
    const p = checkPath(raw.connectPath);
    if (p) return fail(p);
    to = { path: raw.connectPath };
  } else if (raw.connectHost !== undefined) {
    if (!isHostName(raw.connectHost)) return fail(hostProblem(raw.connectHost));
    const port = parsePort(raw.connectPort ?? '');
    if (port === undefined || port === 0)
      return fail(portProblem(raw.connectPort ?? ''), portHint(raw.connectPort ?? ''));
    to = { host: raw.connectHost, port };
  }
  const spec: ForwardSpec = { kind, listen, ...(to ? { to } : {}), text: '', source };
  spec.text = `${FLAGS[kind]} ${forwardArg(spec, ctx)}`;
  return { ok: true, spec };
}

/** A bind address as ssh means it: none (loopback, or every interface with GatewayPorts), `*` or empty (every interface), `localhost` (loopback). */
function bindHost(host: string | undefined, kind: ForwardKind, ctx: ForwardContext): string | undefined {
  if (host === undefined) return kind !== 'remote' && ctx.gatewayPorts ? '*' : undefined;
  if (host === '' || host === '*') return '*';
  return host.toLowerCase() === 'localhost' ? undefined : host;
}

/**
 * The spec as ssh writes it after its flag, bracketing IPv6 addresses and
 * paths with a colon. A loopback listener without a bind address is written
 * `localhost:PORT` under GatewayPorts yes, so that ssh reads it back as loopback.
 */
export function forwardArg(spec: ForwardSpec, ctx: ForwardContext = {}): string {
  const l = spec.listen;
  const listen =
    'path' in l
      ? pathField(l.path)
      : l.host === undefined
        ? spec.kind !== 'remote' && ctx.gatewayPorts
          ? `localhost:${l.port}`
          : String(l.port)
        : `${hostField(l.host)}:${l.port}`;
  const to = spec.to;
  if (!to) return listen;
  return `${listen}:${'path' in to ? pathField(to.path) : `${hostField(to.host)}:${to.port}`}`;
}

function hostField(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

function pathField(path: string): string {
  return path.includes(':') ? `[${path}]` : path;
}

function parsePort(s: string): number | undefined {
  if (!/^\d{1,5}$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function portProblem(s: string): string {
  return s === '' ? 'lacks a port' : `has ${JSON.stringify(s)} where a port (1-65535) goes`;
}

function portHint(s: string): string {
  return /^[A-Za-z][A-Za-z0-9-]*$/.test(s)
    ? `write the port number: ssh also takes a service name such as ${s}, moshctl does not`
    : 'a port is a whole number from 1 to 65535';
}

/** A host name (letters, digits, `.`, `_`, `-`) or an IPv4 or IPv6 literal, nothing a resolver or shell would read more into. */
export function isHostName(h: string): boolean {
  if (h.length === 0 || h.length > 253) return false;
  if (/^[0-9A-Fa-f:.]+$/.test(h) && isIP(h) !== 0) return true;
  return /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(h) && !h.includes(':');
}

function hostProblem(h: string): string {
  return `has ${JSON.stringify(h)}, which is neither a host name nor an IP address (letters, digits, ".", "_" and "-"; an IPv6 address in brackets)`;
}

function checkPath(p: string): string | undefined {
  if (!p.startsWith('/')) return `has the socket path ${JSON.stringify(p)}, which is not absolute`;
  if (Buffer.byteLength(p) > MAX_SOCKET_PATH)
    return `has a socket path longer than ${MAX_SOCKET_PATH} bytes, which a Unix socket cannot have`;
  if (p.includes('\\') || (p.includes(':') && p.includes(']')))
    return `has the socket path ${JSON.stringify(p)}, which ssh's form cannot write (a backslash, or both ":" and "]")`;
  return undefined;
}

/** Whether a local or dynamic forward listens where only this machine reaches it (a socket path counts: its mode guards it). */
export function listensOnLoopback(spec: ForwardSpec): boolean {
  const l = spec.listen;
  if ('path' in l || l.host === undefined) return true;
  return l.host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(l.host);
}

/**
 * Two forwards that would listen on the same socket: the same path, or the
 * same port on addresses that overlap (`*` overlaps all; no bind address is
 * loopback, 127.0.0.1 and ::1). Local and dynamic listen here, remote on the
 * target, so only forwards of the same side clash. Port 0 never does.
 */
export function listenersClash(a: ForwardSpec, b: ForwardSpec): boolean {
  if ((a.kind === 'remote') !== (b.kind === 'remote')) return false;
  const x = a.listen;
  const y = b.listen;
  if ('path' in x || 'path' in y) return 'path' in x && 'path' in y && x.path === y.path;
  if (x.port !== y.port || x.port === 0) return false;
  if (x.host === '*' || y.host === '*' || x.host === y.host) return true;
  const loop = (h: string | undefined): boolean => h === undefined || h === '127.0.0.1' || h === '::1';
  return (x.host === undefined && loop(y.host)) || (y.host === undefined && loop(x.host));
}

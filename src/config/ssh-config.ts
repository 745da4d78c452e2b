// ssh_config as OpenSSH itself resolves it: `ssh -G NAME` prints every
// setting for NAME after Include, Host and Match blocks (lower-case keys, one
// per line, repeated keys once per value). Parsing that output, instead of
// ssh_config files, is what keeps moshctl's view equal to ssh's.
import { userInfo, hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** The settings moshctl takes from ssh_config, raw as `ssh -G` printed them. */
export interface SshGValues {
  hostname?: string;
  user?: string;
  port?: number;
  identityfile: string[];
  certificatefile: string[];
  userknownhostsfile: string[];
  globalknownhostsfile: string[];
  hostkeyalias?: string;
  stricthostkeychecking?: string;
  hashknownhosts?: boolean;
  connecttimeout?: number;
  serveraliveinterval?: number;
  identityagent?: string;
  proxyjump?: string;
  proxycommand?: string;
  /** Forwards as `ssh -G` prints them (`8080 [localhost]:80`), each line's value; see forwards.ts. */
  localforward: string[];
  remoteforward: string[];
  dynamicforward: string[];
  /** `yes`, `no`, a socket path or `$VAR`. */
  forwardagent?: string;
  gatewayports?: boolean;
  clearallforwardings?: boolean;
  exitonforwardfailure?: boolean;
}

export function parseSshG(text: string): SshGValues {
  const v: SshGValues = {
    identityfile: [],
    certificatefile: [],
    userknownhostsfile: [],
    globalknownhostsfile: [],
    localforward: [],
    remoteforward: [],
    dynamicforward: [],
  };
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const key = (m[1] ?? '').toLowerCase();
    const value = m[2] ?? '';
    switch (key) {
      case 'hostname':
      case 'user':
      case 'hostkeyalias':
      case 'stricthostkeychecking':
      case 'identityagent':
      case 'proxyjump':
      case 'proxycommand':
      case 'forwardagent':
        v[key] = value;
        break;
      case 'gatewayports':
      case 'clearallforwardings':
      case 'exitonforwardfailure':
        v[key] = value === 'yes';
        break;
      case 'localforward':
      case 'remoteforward':
      case 'dynamicforward':
        v[key].push(value);
        break;
      case 'port':
        v.port = Number(value);
        break;
      case 'connecttimeout':
        if (/^\d+$/.test(value)) v.connecttimeout = Number(value);
        break;
      case 'serveraliveinterval':
        if (/^\d+$/.test(value)) v.serveraliveinterval = Number(value);
        break;
      case 'hashknownhosts':
        v.hashknownhosts = value === 'yes';
        break;
      case 'identityfile':
      case 'certificatefile':
        v[key].push(value);
        break;
      case 'userknownhostsfile':
      case 'globalknownhostsfile':
        v[key].push(...splitWords(value));
        break;
      default:
        break;
    }
  }
  // `ssh -G` prints "none" for unset proxy settings in some versions.
  if (v.proxyjump === 'none') delete v.proxyjump;
  if (v.proxycommand === 'none') delete v.proxycommand;
  return v;
}

/** ssh_config lists are space separated; a path with spaces is double-quoted. */
function splitWords(value: string): string[] {
  return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? '').filter(Boolean);
}

export interface JumpSpec {
  /** The host as written: looked up in ssh_config (`ssh -G host`). */
  host: string;
  user?: string;
  port?: number;
  /** The spec as written, for messages. */
  text: string;
}

/**
 * One ProxyJump list: `[user@]host[:port]` or `ssh://[user@]host[:port]`,
 * comma separated; an IPv6 host is bracketed (`[2001:db8::1]:22`).
 */
export function parseProxyJump(list: string): JumpSpec[] | { error: string } {
  const out: JumpSpec[] = [];
  for (const raw of list.split(',')) {
    const text = raw.trim();
    const s = text.replace(/^ssh:\/\//, '');
    const m = /^(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@\s[\]]+)(?::(\d{1,5}))?$/.exec(s);
    if (!m || text === '') return { error: `"${text}" is not [user@]host[:port]` };
    const port = m[3] === undefined ? undefined : Number(m[3]);
    if (port !== undefined && (port < 1 || port > 65535)) return { error: `"${text}": port out of range` };
    out.push({
      host: (m[2] ?? '').replace(/^\[(.*)\]$/, '$1'),
      ...(m[1] ? { user: m[1] } : {}),
      ...(port !== undefined ? { port } : {}),
      text,
    });
  }
  return out;
}

/** Who runs moshctl, as OpenSSH sees it: `~` is the passwd entry's home, never $HOME. */
export interface LocalUser {
  name: string;
  home: string;
  uid: number;
}

export function localUser(): LocalUser {
  const u = userInfo();
  return { name: u.username, home: u.homedir, uid: u.uid };
}

/**
 * `~` and the `%` tokens OpenSSH expands in IdentityFile, CertificateFile and
 * known_hosts paths (ssh_config(5) TOKENS). `ssh -G` prints them unexpanded.
 */
export function expandSshPath(
  path: string,
  ctx: { local: LocalUser; host: string; user: string; port: number; original: string },
): string {
  const tokens: Record<string, string> = {
    '%': '%',
    d: ctx.local.home,
    u: ctx.local.name,
    i: String(ctx.local.uid),
    h: ctx.host,
    r: ctx.user,
    p: String(ctx.port),
    n: ctx.original,
    l: hostname(),
    L: hostname().split('.')[0] ?? '',
  };
  let p = path.replace(/%(.)/g, (all, t: string) => tokens[t] ?? all);
  if (p === '~') p = ctx.local.home;
  else if (p.startsWith('~/')) p = join(ctx.local.home, p.slice(2));
  return isAbsolute(p) ? p : join(ctx.local.home, p);
}

/** OpenSSH's default identities, as `ssh -G` lists them when nothing names one. */
export const DEFAULT_IDENTITIES = [
  'id_rsa',
  'id_ecdsa',
  'id_ecdsa_sk',
  'id_ed25519',
  'id_ed25519_sk',
  'id_xmss',
  'id_dsa',
].map((f) => `~/.ssh/${f}`);

export const DEFAULT_USER_KNOWN_HOSTS = ['~/.ssh/known_hosts', '~/.ssh/known_hosts2'];
export const DEFAULT_GLOBAL_KNOWN_HOSTS = ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'];

// The address this machine's end of a master's TCP connection has, read from
// /proc (Linux): once that address is gone from this machine (a roam), the
// chain is dead for sure, and need not be probed for seconds first. ssh2 knows
// it from its own socket; for an ssh process, the kernel's socket table is the
// one place that says it, also behind a NAT (where $SSH_CONNECTION on the hop
// shows the router's address). Elsewhere (no /proc: macOS, BSD), and for a
// first hop reached through a ProxyCommand (pipes, no socket), it is unknown.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** One row of /proc/net/tcp or tcp6: its local and remote ends, state and socket inode. */
export interface SocketRow {
  local: { address: string; port: number };
  remote: { address: string; port: number };
  /** The kernel's TCP state number: 1 is ESTABLISHED. */
  state: number;
  inode: string;
}

const ESTABLISHED = 1;

/** `0100007F:0016` (IPv4) or 32 hex digits and a port (IPv6): each 32-bit word in host order (little-endian here). */
function decodeEnd(text: string): { address: string; port: number } | undefined {
  const [hex, portHex] = text.split(':');
  if (!hex || !portHex || !/^[0-9A-F]+$/i.test(hex + portHex)) return undefined;
  const port = parseInt(portHex, 16);
  const words = hex.match(/.{8}/g) ?? [];
  if (hex.length !== 8 && hex.length !== 32) return undefined;
  // Each word's bytes come lowest first.
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  if (bytes.length === 4) return { address: bytes.join('.'), port };
  // ::ffff:a.b.c.d is an IPv4 connection on an IPv6 socket: named as networkInterfaces() names it.
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    return { address: bytes.slice(12).join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return { address: compressV6(groups), port };
}

/** RFC 5952 text: the longest run of two or more zero groups as `::`. */
function compressV6(groups: string[]): string {
  let best = { at: -1, len: 0 };
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > best.len && j - i >= 2) best = { at: i, len: j - i };
    i = j;
  }
  if (best.at < 0) return groups.join(':');
  return `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`;
}

/** The rows of a /proc/net/tcp or tcp6 text (its header line skipped, unreadable rows left out). */
export function parseSocketTable(text: string): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    const local = decodeEnd(f[1] ?? '');
    const remote = decodeEnd(f[2] ?? '');
    const state = parseInt(f[3] ?? '', 16);
    const inode = f[9];
    if (local && remote && Number.isInteger(state) && inode && /^\d+$/.test(inode))
      rows.push({ local, remote, state, inode });
  }
  return rows;
}

/**
 * The local address of the established connection, among `rows`, whose socket
 * is one of `inodes` and whose far end is `port`: the one to `address` when
 * that is given and found (spelled as the kernel's table spells it), else the
 * only such connection; undefined when there is none or more than one.
 */
export function localEndOf(
  rows: readonly SocketRow[],
  inodes: ReadonlySet<string>,
  to: { address?: string | undefined; port: number },
): string | undefined {
  const mine = rows.filter(
    (r) => r.state === ESTABLISHED && inodes.has(r.inode) && r.remote.port === to.port,
  );
  const exact = mine.find((r) => r.remote.address === to.address);
  return (exact ?? (mine.length === 1 ? mine[0] : undefined))?.local.address;
}

/** The socket inodes process `pid` holds (`socket:[N]` links in /proc/PID/fd). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

/**
 * This machine's address on the TCP connection process `pid` (an ssh master)
 * holds to `to`; undefined where /proc cannot say.
 */
export function processLocalAddress(
  pid: number,
  to: { address?: string | undefined; port: number },
): string | undefined {
  try {
    const inodes = socketInodes(pid);
    if (inodes.size === 0) return undefined;
    const rows = ['tcp', 'tcp6'].flatMap((t) => {
      try {
        return parseSocketTable(readFileSync(`/proc/${pid}/net/${t}`, 'utf8'));
      } catch {
        return [];
      }
    });
    return localEndOf(rows, inodes, to);
  } catch {
    return undefined;
  }
}

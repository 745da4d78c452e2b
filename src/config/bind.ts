// mosh.bind_server and `--bind-server`: the same three forms as mosh's own
// --bind-server. An address ends up in a remote command line (`-i ADDRESS`),
// so only what node:net takes for an IP literal gets through.
import { isIP } from 'node:net';
import type { BindServer } from './types.js';

export const BIND_SERVER_HINT =
  'use ssh (the address ssh came in on, the default), any, or an IPv4 or IPv6 address of the target such as 203.0.113.10 or 2001:db8::10';

export type BindServerResult = { ok: true; value: BindServer } | { ok: false; message: string; hint: string };

export function parseBindServer(value: unknown): BindServerResult {
  if (value === 'ssh' || value === 'any') return { ok: true, value };
  // No zone (`fe80::1%eth0`): a link-local address cannot be what a relay on another network sends to.
  if (typeof value === 'string' && isIP(value) !== 0 && !value.includes('%')) return { ok: true, value };
  return {
    ok: false,
    message: `${JSON.stringify(value)} is neither ssh, any nor an IP address`,
    hint: BIND_SERVER_HINT,
  };
}

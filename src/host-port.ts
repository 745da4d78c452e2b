// `HOST:PORT` as people and programs read it: an IPv6 literal in brackets
// (`[2001:db8::10]:22`), since its own colons would swallow the port. The
// form OpenSSH prints and known_hosts uses, and what the relay's --to takes.
import { isIPv4, isIPv6 } from 'node:net';

/** `HOST:PORT`, or `[HOST]:PORT` for an IPv6 address; the port may be a placeholder such as `<port of step 4>`. */
export function hostPort(host: string, port: number | string): string {
  // Every IPv6 address has a colon; the test before isIPv6 spares a name or an IPv4
  // address Node's IPv6 pattern, whose first use costs 3-6 ms (measured on `moshctl plan`).
  return host.includes(':') && isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * net.isIP, without Node's IPv6 pattern for text that has no colon and so
 * cannot be an IPv6 address: that pattern's first use costs 3-6 ms (measured
 * in `moshctl plan` of a host named in ssh_config).
 */
export function ipVersion(text: string): 0 | 4 | 6 {
  if (text.includes(':')) return isIPv6(text) ? 6 : 0;
  return isIPv4(text) ? 4 : 0;
}

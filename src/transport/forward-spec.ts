// Forward endpoints written as OpenSSH reads them on its command line: the
// `-R` spec `ssh -O forward` takes, and the `-W` target. Both clients use the
// -R spec in messages, so a refusal reads the same whichever carried it.
// Pure; the result goes into argv, never through a shell.
//
// OpenSSH splits a spec at `:` (misc.c parse_forward): a field in brackets is
// taken as it is (an IPv6 address), a backslash makes the next character
// plain, and a field with a `/` is a socket path.

import { isIP, isIPv6 } from 'node:net';
import type { Endpoint } from '../forward/types.js';
import { UserError } from '../errors.js';

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

function hostField(host: string, what: string, bind: boolean): string {
  if (isIPv6(host)) return `[${host}]`;
  if (isIP(host) || HOST_NAME.test(host) || (bind && (host === '*' || host === ''))) return host;
  throw UserError.one(
    `${what} "${host.replace(/\p{Cc}/gu, '?')}" is not a host name or IP address`,
    'give a host name, an IPv4 address, or an IPv6 address (brackets are added where ssh needs them)',
  );
}

function portField(port: number, what: string, zeroOk: boolean): string {
  if (!Number.isInteger(port) || port < (zeroOk ? 0 : 1) || port > 65535)
    throw UserError.one(`${what} ${port} is not a port`, `give a port from ${zeroOk ? 0 : 1} to 65535`);
  return String(port);
}

/** A socket path as one field: `\` and `:` escaped, and a `/` in it so ssh reads it as a path. */
function pathField(path: string): string {
  if (path === '' || /\p{Cc}/u.test(path))
    throw UserError.one(
      `socket path "${path.replace(/\p{Cc}/gu, '?')}" is empty or has a control character`,
      'give a plain socket path',
    );
  const p = path.includes('/') ? path : `./${path}`;
  return p.replace(/[\\:[\]]/g, (c) => `\\${c}`);
}

function endpointFields(e: Endpoint, what: string): string {
  return 'path' in e
    ? pathField(e.path)
    : `${hostField(e.host, `${what} host`, false)}:${portField(e.port, `${what} port`, false)}`;
}

/**
 * The -R spec for listening at `at` on the remote host and connecting to
 * `to` here: `BIND:PORT:HOST:PORT`, `BIND:PORT:PATH`, `PATH:HOST:PORT` or
 * `PATH:PATH`. The bind address is always written (callers pass `localhost`
 * for none, as ssh asks).
 */
export function remoteForwardSpec(
  at: { host: string; port: number } | { path: string },
  to: Endpoint,
): string {
  const listen =
    'path' in at
      ? pathField(at.path)
      : `${hostField(at.host, 'remote forward bind address', true)}:${portField(at.port, 'remote forward port', true)}`;
  return `${listen}:${endpointFields(to, 'remote forward destination')}`;
}

/** `-W`'s `HOST:PORT` (brackets for IPv6). OpenSSH's -W takes no socket path: callers refuse one first. */
export function stdioForwardTarget(to: { host: string; port: number }): string {
  return endpointFields(to, 'forward destination');
}

// What ssh2 cannot do (facts.md: its issues #551, #1496, #333 stay open): a
// user certificate, a FIDO security key, a ProxyCommand, a host known only
// through @cert-authority. Found from the host's settings and
// files alone, so the same test both picks the client when nothing names one
// (config/client-choice.ts) and refuses, before any hop is dialled, a host
// whose moshproxy.yaml insists on ssh2.
import type { SshHost } from '../config/types.js';
import { EnvError, type ConnectFault } from '../errors.js';
import { knownHostsName, knownOnlyByCertAuthority, type KnownHostsText } from './known-hosts.js';

/** Something a host needs that ssh2 cannot do, and which connect step it would fail at. */
export interface Ssh2Limit {
  what: string;
  fault: ConnectFault;
}

/** The first thing `host` needs that ssh2 cannot do, from its settings and known_hosts; undefined when ssh2 can. */
export function ssh2Limit(host: SshHost, known: readonly KnownHostsText[]): Ssh2Limit | undefined {
  if (host.proxy_command) return { what: `a ProxyCommand (${shorten(host.proxy_command)})`, fault: 'reach' };
  const cert = host.certificate_files[0];
  if (cert) return { what: `an OpenSSH user certificate (${cert})`, fault: 'auth' };
  const name = knownHostsName(host.address, host.port, host.host_key_alias);
  if (knownOnlyByCertAuthority(known, name))
    return {
      what: 'a host certificate: its key is known only through an @cert-authority line',
      fault: 'host-key',
    };
  return undefined;
}

function shorten(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function refuse(host: SshHost, limit: Ssh2Limit): EnvError {
  return new EnvError(
    `${host.name} needs ${limit.what}, which the built-in ssh2 client cannot do`,
    `let your own ssh carry the connection: remove "ssh_client: ssh2" for ${host.name} (and under defaults:) in moshproxy.yaml, so moshctl picks openssh by itself, or set ssh_client: openssh; the OpenSSH client (ssh) must be installed`,
    { host: host.name, step: 'connect', fault: limit.fault },
  );
}

export function ssh2Refusal(host: SshHost, known: readonly KnownHostsText[]): EnvError | undefined {
  const limit = ssh2Limit(host, known);
  return limit ? refuse(host, limit) : undefined;
}

/** The key type of an OpenSSH-format private key (readable even when the key is encrypted). */
export function privateKeyType(data: Buffer): string | undefined {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(
    data.toString('latin1'),
  );
  if (!m) return undefined;
  const blob = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (blob.subarray(0, magic.length).toString('latin1') !== magic) return undefined;
  let at = magic.length;
  const str = (): Buffer | undefined => {
    if (at + 4 > blob.length) return undefined;
    const len = blob.readUInt32BE(at);
    const out = blob.subarray(at + 4, at + 4 + len);
    at += 4 + len;
    return out.length === len ? out : undefined;
  };
  str(); // cipher
  str(); // kdf
  str(); // kdf options
  at += 4; // number of keys
  const pub = str();
  if (!pub || pub.length < 4) return undefined;
  const len = pub.readUInt32BE(0);
  return pub.subarray(4, 4 + len).toString('latin1');
}

export function isSecurityKey(keyType: string | undefined): boolean {
  return keyType?.startsWith('sk-') === true;
}

export function securityKeyLimit(path: string): Ssh2Limit {
  return { what: `a FIDO security key (${path})`, fault: 'auth' };
}

export function securityKeyRefusal(host: SshHost, path: string): EnvError {
  return refuse(host, securityKeyLimit(path));
}

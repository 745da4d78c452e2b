// What ssh2 cannot do (facts.md: its issues #551, #1496, #333 stay open), found
// before any hop is dialled: a user certificate, a FIDO security key, a
// ProxyCommand, a host known only through @cert-authority. Each refusal names
// the host and the way out, `ssh_client: openssh`, which hands all of it to
// the user's own ssh.
import type { SshHost } from '../config/types.js';
import { EnvError, type ConnectFault } from '../errors.js';
import { knownHostsName, knownOnlyByCertAuthority, type KnownHostsText } from './known-hosts.js';

function refuse(host: SshHost, what: string, fault: ConnectFault): EnvError {
  return new EnvError(
    `${host.name} needs ${what}, which the built-in ssh2 client cannot do`,
    `set ssh_client: openssh for ${host.name} (or under defaults:) in moshproxy.yaml, so your own ssh carries the connection`,
    { host: host.name, step: 'connect', fault },
  );
}

export function ssh2Refusal(host: SshHost, known: readonly KnownHostsText[]): EnvError | undefined {
  if (host.proxy_command) return refuse(host, `a ProxyCommand (${host.proxy_command.slice(0, 60)})`, 'reach');
  const cert = host.certificate_files[0];
  if (cert) return refuse(host, `an OpenSSH user certificate (${cert})`, 'auth');
  const name = knownHostsName(host.address, host.port, host.host_key_alias);
  if (knownOnlyByCertAuthority(known, name))
    return refuse(
      host,
      `a host certificate: its key is known only through an @cert-authority line`,
      'host-key',
    );
  return undefined;
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

export function securityKeyRefusal(host: SshHost, path: string): EnvError {
  return refuse(host, `a FIDO security key (${path})`, 'auth');
}

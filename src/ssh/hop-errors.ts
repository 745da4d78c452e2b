// ssh2 reports failures as bare Errors with a `level` (and sometimes a
// `code` or `reason`); these turn them into messages that name the hop and
// say what to change. Nothing here may quote key material or command input.

import type { SshHost } from '../config/types.js';
import { EnvError, type ConnectFault } from '../errors.js';
import { duration } from '../transport/errors.js';
import { noKeyHint } from './auth.js';
import { fingerprintSha256, knownHostsName, type HostKeyVerdict } from './known-hosts.js';
import { hostPort } from '../host-port.js';

export interface HostKeySeen {
  verdict: HostKeyVerdict;
  keyType: string;
  key: Buffer;
  knownHostsMissing: boolean;
}

interface Ssh2Error extends Error {
  level?: string;
  code?: string | number;
  reason?: number | string;
}

export function hopLabel(h: SshHost): string {
  return `${h.name} (${h.user}@${hostPort(h.address, h.port)})`;
}

function where(h: SshHost, fault: ConnectFault): { host: string; step: string; fault: ConnectFault } {
  return { host: h.name, step: 'connect', fault };
}

const socketCodes: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'name not found',
  EAI_AGAIN: 'name lookup failed',
  ECONNRESET: 'connection reset',
};

/** The message of a failure to reach or log in to `host`, given what ssh2 raised. */
export function connectError(
  err: unknown,
  host: SshHost,
  prev: SshHost | undefined,
  ctx: {
    tried: string;
    /** Why no key file nor agent could serve, when only prompts were left (see HopAuth.noKey). */
    noKey?: string | undefined;
    readyTimeoutMs: number;
    hostKey: HostKeySeen | undefined;
  },
): EnvError {
  if (err instanceof EnvError) return err;
  const e = (err instanceof Error ? err : new Error(String(err))) as Ssh2Error;
  const label = hopLabel(host);
  const reach = prev
    ? `that ${prev.name} can reach ${hostPort(host.address, host.port)}`
    : `that this machine can reach it`;

  if (ctx.hostKey && ctx.hostKey.verdict.status !== 'ok') return hostKeyError(host, prev, ctx.hostKey, e);

  if (e.level === 'client-authentication' && ctx.noKey) {
    // Only prompts were offered: "authorize the key" would point at a key there is not.
    return new EnvError(
      `no key to log in to ${host.name} with: ${ctx.noKey}, and ${label} did not let user ${host.user} in with a password or keyboard-interactive prompt`,
      noKeyHint(host),
      where(host, 'auth'),
      { cause: e },
    );
  }
  if (e.level === 'client-authentication') {
    return new EnvError(
      `${label} refused to log in user ${host.user} with ${ctx.tried}`,
      `authorize the key for ${host.user} on ${host.name} (append ${host.identity_files[0] ? `${host.identity_files[0]}.pub` : 'the public key'} to ~${host.user}/.ssh/authorized_keys there), or set user/identity_file of ${host.name} to ones it accepts; if ssh itself logs in with a certificate or security key, use ssh_client: openssh`,
      where(host, 'auth'),
      { cause: e },
    );
  }
  if (e.level === 'client-timeout') {
    return new EnvError(
      `${label} did not complete the SSH handshake within ${duration(ctx.readyTimeoutMs)}`,
      `check that sshd listens at ${hostPort(host.address, host.port)} and ${reach} (a firewall that drops packets looks like this)`,
      where(host, 'reach'),
      { cause: e },
    );
  }
  if (e.level === 'client-socket' || e.level === 'client-dns') {
    const what = (typeof e.code === 'string' && socketCodes[e.code]) || e.message;
    return new EnvError(
      `cannot reach ${label}: ${what}`,
      `check the address and port of ${host.name} and ${reach}`,
      where(host, 'reach'),
      { cause: e },
    );
  }
  return new EnvError(
    `SSH connection to ${label} failed: ${e.message}`,
    `check that ${hostPort(host.address, host.port)} is an OpenSSH server and ${reach}`,
    where(host, 'reach'),
    { cause: e },
  );
}

function hostKeyError(host: SshHost, prev: SshHost | undefined, seen: HostKeySeen, cause: Error): EnvError {
  const label = hopLabel(host);
  const fp = `${seen.keyType} ${fingerprintSha256(seen.key)}`;
  const files = [...host.known_hosts, ...host.global_known_hosts].join(', ');
  const name = knownHostsName(host.address, host.port, host.host_key_alias);
  const v = seen.verdict;
  switch (v.status) {
    case 'revoked':
      return new EnvError(
        `host key of ${label} (${fp}) is marked @revoked in ${v.file} line ${v.line}`,
        `do not connect; the key was revoked on purpose. Ask the administrator of ${host.name} for its new key`,
        where(host, 'host-key'),
        { cause },
      );
    case 'changed':
      return new EnvError(
        `host key of ${label} does not match ${v.file} line ${v.line} (it presented ${fp}; that line records another ${v.keyType} key): someone could be intercepting the connection (man-in-the-middle attack), or the host key was changed`,
        `if the key was changed on purpose, confirm ${fingerprintSha256(seen.key)} out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then remove the old entry (ssh-keygen -R '${name}' -f ${v.file}) and add the new one`,
        where(host, 'host-key'),
        { cause },
      );
    default:
      return new EnvError(
        `host key of ${label} is not in ${files}${seen.knownHostsMissing ? ' (none of them exists)' : ''}: ${fp}`,
        `check that its fingerprint is ${fingerprintSha256(seen.key)} through a channel you trust (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then log in once with ssh to record it (or append \`ssh-keyscan -p ${host.port} ${host.address}\`${prev ? ` run on ${prev.name}` : ''} to ${host.known_hosts[0] ?? 'known_hosts'}), or set host_key_policy: accept-new for ${host.name} to record new hosts' keys as ssh's accept-new does`,
        where(host, 'host-key'),
        { cause },
      );
  }
}

/** A failure of the previous hop to open the TCP tunnel to `host`. */
export function forwardError(err: unknown, host: SshHost, prev: SshHost): EnvError {
  const e = (err instanceof Error ? err : new Error(String(err))) as Ssh2Error;
  const target = hostPort(host.address, host.port);
  // RFC 4254 5.1 reason codes.
  if (e.reason === 1) {
    return new EnvError(
      `${prev.name} refused to forward a connection to ${host.name} (${target}): administratively prohibited`,
      `allow TCP forwarding for ${prev.user} on ${prev.name}: AllowTcpForwarding yes (or local) and a PermitOpen that includes ${target} in its sshd_config, and no no-port-forwarding/restrict option on the key in authorized_keys`,
      where(host, 'forward'),
      { cause: e },
    );
  }
  const raw = e.message.replace(/^\(SSH\) Channel open failure: /, '') || 'connect failed';
  const why = raw.charAt(0).toLowerCase() + raw.slice(1);
  return new EnvError(
    `cannot reach ${hopLabel(host)} through ${prev.name}: ${why}`,
    `check the address and port of ${host.name} and that ${prev.name} can reach ${target} (on ${prev.name}: nc -vz ${host.address} ${host.port})`,
    where(host, 'reach'),
    { cause: e },
  );
}

export function forwardTimeout(host: SshHost, prev: SshHost, ms: number): EnvError {
  return new EnvError(
    `${prev.name} did not open a connection to ${hopLabel(host)} within ${duration(ms)}`,
    `check that ${prev.name} can reach ${hostPort(host.address, host.port)} (a firewall that drops packets looks like this)`,
    where(host, 'reach'),
  );
}

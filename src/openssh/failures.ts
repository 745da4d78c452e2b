// What a ControlMaster logged (`ssh -E`), turned into moshctl's errors: a message
// naming the hop and a hint saying what to change, as src/ssh/hop-errors.ts
// does for ssh2. OpenSSH's own wording is matched (OpenSSH 7 to 9 print these
// lines the same way). Pure: no processes, no files.

import { isIP } from 'node:net';
import type { SshHost } from '../config/types.js';
import { EnvError, type ConnectFault } from '../errors.js';
import { hopLabel } from '../ssh/hop-errors.js';
import { duration } from '../transport/errors.js';
import { knownHostsName } from '../ssh/known-hosts.js';
import { hostPort } from '../host-port.js';

export interface MasterFailure {
  host: SshHost;
  prev: SshHost | undefined;
  /** What the failed master logged (the end of it). */
  log: string;
  /**
   * What the previous hop's master logged while this hop connected: a stdio
   * forward refused there is explained only there ("channel 3: open failed: …").
   */
  prevLog: string;
  /** Whether an ssh-agent socket existed for this hop; undefined: unknown, assume so unless IdentityAgent none. */
  agent?: boolean;
  /** Whether ssh had a terminal to ask for a passphrase on. */
  interactive?: boolean;
  /** The hop's identity files that are encrypted (see isEncryptedKey). */
  encryptedKeys?: string[];
  /** What ssh's stderr carried: for a first hop, its ProxyCommand's own words. */
  stderr?: string;
}

/** Whether a private key file (OpenSSH or PEM format) needs a passphrase. */
export function isEncryptedKey(data: Buffer): boolean {
  const text = data.toString('latin1');
  if (/^Proc-Type: 4,ENCRYPTED/m.test(text) || text.includes('BEGIN ENCRYPTED PRIVATE KEY')) return true;
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return false;
  const blob = Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (blob.subarray(0, magic.length).toString('latin1') !== magic || blob.length < magic.length + 4)
    return false;
  // The first field after the magic is the cipher's name: "none" for a key without a passphrase.
  const len = blob.readUInt32BE(magic.length);
  const cipher = blob.subarray(magic.length + 4, magic.length + 4 + len).toString('latin1');
  return cipher !== 'none';
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
}

/** Lines moshctl asked for (LogLevel VERBOSE) or that only decorate a message. */
const NOISE = /^(@+|Authenticated to |Transferred: |Bytes per second: |Warning: Permanently added )/;

/** The last few meaningful lines, for a failure nothing else matched. */
export function lastLines(text: string, count = 3, maxChars = 400): string {
  const kept = lines(text)
    .filter((l) => !NOISE.test(l))
    .slice(-count)
    .join('; ');
  return kept.length > maxChars ? `...${kept.slice(-(maxChars - 3))}` : kept;
}

/**
 * The numeric address the first hop's TCP connection reached, from OpenSSH's
 * VERBOSE line `Authenticated to NAME ([IP]:PORT) using "method".` (older
 * versions end the line after the port). Undefined when missing.
 */
export function parseReachedAddress(log: string): string | undefined {
  const m = /^Authenticated to \S+ \(\[([^\]]+)\]:\d+\)/m.exec(log);
  const ip = m?.[1];
  return ip && isIP(ip) ? ip : undefined;
}

/** `fault`: which part of logging in failed (see ConnectFault); none for a connection that dropped later. */
function where(h: SshHost, fault?: ConnectFault): { host: string; step: 'connect'; fault?: ConnectFault } {
  return { host: h.name, step: 'connect', ...(fault ? { fault } : {}) };
}

function reachFrom(host: SshHost, prev: SshHost | undefined): string {
  return prev
    ? `that ${prev.name} can reach ${hostPort(host.address, host.port)}`
    : 'that this machine can reach it';
}

/** `connect failed: Connection refused` and the like, as the previous hop or ssh itself reported them. */
const NETWORK_CAUSES: [RegExp, string][] = [
  [/Connection refused/i, 'connection refused'],
  [/No route to host/i, 'no route to host'],
  [/Network is unreachable/i, 'network unreachable'],
  [/Connection reset/i, 'connection reset'],
];

const RESOLVE =
  /Could not resolve hostname|Name or service not known|nodename nor servname|Temporary failure in name resolution|No address associated with hostname/i;

const TIMED_OUT =
  /Connection timed out|timed out during banner exchange|port \d+ timed out|Operation timed out/i;

/**
 * An access broker's ProxyCommand that exited, hung or gave no ssh stream:
 * what it said on stderr is the only clue, so it is quoted.
 */
function proxyCommandFailure(host: SshHost, log: string, stderr: string): EnvError {
  const label = hopLabel(host);
  const said = lastLines(stderr);
  const what = TIMED_OUT.test(log)
    ? `the ProxyCommand of ${label} gave no ssh connection within ${duration(host.connect_timeout * 1000)}${said ? `; it said: ${said}` : ''}`
    : `the ProxyCommand of ${label} ended before an ssh connection was made${said ? `: ${said}` : ', without a word on stderr'}`;
  return new EnvError(
    what,
    `it is "${host.proxy_command ?? ''}" (ssh_config's ProxyCommand for ${host.ssh_name}): run it by hand to see why; an access broker may want you to log in first, or the instance to be running`,
    where(host, 'reach'),
  );
}

/** The EnvError for a master that exited before its control socket appeared. */
export function masterFailure(f: MasterFailure): EnvError {
  const { host, prev, log } = f;
  const label = hopLabel(host);
  const hostKey = hostKeyFailure(host, prev, log);
  if (hostKey) return hostKey;

  const denied = /Permission denied \(([^)]*)\)|Too many authentication failures/.exec(log);
  if (denied) return loginRefused(f, denied[1]);

  // Only the first hop's ProxyCommand runs: inner hops go through the hop before.
  if (!prev && host.proxy_command) return proxyCommandFailure(host, log, f.stderr ?? '');
  if (prev) {
    const forward = forwardFailure(host, prev, f.prevLog, log);
    if (forward) return forward;
  }
  if (RESOLVE.test(log)) {
    return new EnvError(
      `cannot reach ${label}: ${host.address} does not resolve${prev ? ` on ${prev.name}` : ''}`,
      `check the address of ${host.name}${prev ? ` (as ${prev.name} resolves it)` : ''}`,
      where(host, 'reach'),
    );
  }
  for (const [re, what] of NETWORK_CAUSES) {
    if (re.test(log)) {
      return new EnvError(
        `cannot reach ${label}${prev ? ` through ${prev.name}` : ''}: ${what}`,
        `check the address and port of ${host.name} and ${reachFrom(host, prev)}`,
        where(host, 'reach'),
      );
    }
  }
  if (TIMED_OUT.test(log)) {
    return new EnvError(
      `${label} did not answer${prev ? ` through ${prev.name}` : ''} within ${duration(host.connect_timeout * 1000)}`,
      `check that sshd listens at ${hostPort(host.address, host.port)} and ${reachFrom(host, prev)} (a firewall that drops packets looks like this)`,
      where(host, 'reach'),
    );
  }
  const said = lastLines(log);
  return new EnvError(
    `ssh to ${label} failed${said ? `: ${said}` : ' without saying why'}`,
    `run \`ssh -v ${host.ssh_name}\` to see more; check the settings \`moshctl config --resolved\` shows for ${host.name}`,
    where(host, 'reach'),
  );
}

function hostKeyFailure(host: SshHost, prev: SshHost | undefined, log: string): EnvError | undefined {
  const label = hopLabel(host);
  const name = knownHostsName(host.address, host.port, host.host_key_alias);
  const files = [...host.known_hosts, ...host.global_known_hosts].join(', ') || 'no known_hosts file';
  if (/is marked as revoked|REVOKED HOST KEY/.test(log)) {
    return new EnvError(
      `host key of ${label} is marked @revoked in its known_hosts (${files})`,
      `do not connect; the key was revoked on purpose. Ask the administrator of ${host.name} for its new key`,
      where(host, 'host-key'),
    );
  }
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed/.test(log)) {
    const offending = /Offending (\S+) key in (.+):(\d+)\s*$/m.exec(log);
    const fp = /key sent by the remote host is\s+(\S+?)\.?\s*$/m.exec(log)?.[1];
    const file = offending?.[2] ?? host.known_hosts[0] ?? 'known_hosts';
    const at = offending ? `${offending[2]} line ${offending[3]}` : files;
    return new EnvError(
      `host key of ${label} does not match ${at}${fp ? ` (it presented ${fp})` : ''}: someone could be intercepting the connection (man-in-the-middle attack), or the host key was changed`,
      `if the key was changed on purpose, confirm ${fp ?? 'its fingerprint'} out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then remove the old entry (ssh-keygen -R '${name}' -f ${file}) and log in once with ssh to record the new one`,
      where(host, 'host-key'),
    );
  }
  const unknown = /No (\S+) host key is known for (\S+) and you have requested strict checking/.exec(log);
  if (unknown || /Host key verification failed/.test(log)) {
    const what = unknown ? `is not in ${files}` : `could not be verified against ${files}`;
    const said = unknown ? '' : ` (ssh: ${lastLines(log)})`;
    return new EnvError(
      `host key of ${label} ${what}${said}`,
      `check its fingerprint through a channel you trust (on the host: ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then log in once with ssh to record it (or append \`ssh-keyscan -p ${host.port} ${host.address}\`${prev ? ` run on ${prev.name}` : ''} to ${host.known_hosts[0] ?? 'known_hosts'}), or set host_key_policy: accept-new for ${host.name} to record new hosts' keys as ssh's accept-new does`,
      where(host, 'host-key'),
    );
  }
  return undefined;
}

function loginRefused(f: MasterFailure, methods: string | undefined): EnvError {
  const { host, log } = f;
  const hasAgent = f.agent ?? host.identity_agent !== 'none';
  const locked = f.encryptedKeys?.[0];
  if (locked && !hasAgent && f.interactive === false) {
    // ssh could not ask for the passphrase, so the key was never offered: "authorize the key" would mislead.
    return new EnvError(
      `identity file ${locked} for ${host.name} is encrypted, and there is neither a terminal to ask for its passphrase nor an ssh-agent`,
      `load it into ssh-agent (eval "$(ssh-agent)" && ssh-add ${locked}), or run moshctl in a terminal`,
      where(host, 'auth'),
    );
  }
  const keys = [...host.identity_files, ...host.certificate_files];
  const agent = hasAgent ? 'the ssh-agent' : '';
  const tried = [keys.join(', '), agent].filter(Boolean).join(' and ') || 'no key';
  // Why a key could not even be offered (bad permissions, a security key that failed to sign).
  const notes = lines(log).filter((l) => /^Load key |signing failed|UNPROTECTED PRIVATE KEY/.test(l));
  const tooMany = methods === undefined;
  return new EnvError(
    `${hopLabel(host)} refused to log in user ${host.user}${tooMany ? ' (too many authentication failures)' : ''}; tried ${tried}${methods ? ` (it accepts: ${methods})` : ''}${notes.length ? `; ${notes.join('; ')}` : ''}`,
    tooMany
      ? `the agent offers too many keys before the right one: set IdentitiesOnly yes for ${host.ssh_name} in ssh_config, or give ${host.name} the identity_file it accepts`
      : `authorize the key for ${host.user} on ${host.name} (append ${host.identity_files[0] ? `${host.identity_files[0]}.pub` : 'the public key'} to ~${host.user}/.ssh/authorized_keys there), or set user/identity_file of ${host.name} to ones it accepts; \`ssh -v ${host.ssh_name}\` shows what ssh offered`,
    where(host, 'auth'),
  );
}

/** A stdio forward the previous hop refused or could not open, explained from that hop's own log. */
function forwardFailure(host: SshHost, prev: SshHost, prevLog: string, log: string): EnvError | undefined {
  const target = hostPort(host.address, host.port);
  const open = /open failed: (.*)$/m.exec(prevLog)?.[1]?.trim();
  if (open && /administratively prohibited/i.test(open)) {
    return new EnvError(
      `${prev.name} refused to forward a connection to ${host.name} (${target}): administratively prohibited`,
      `allow TCP forwarding for ${prev.user} on ${prev.name}: AllowTcpForwarding yes (or local) and a PermitOpen that includes ${target} in its sshd_config, and no no-port-forwarding/restrict option on the key in authorized_keys`,
      where(host, 'forward'),
    );
  }
  if (open) {
    const why = open.replace(/^connect failed: /, '');
    const cause = RESOLVE.test(why) ? `${host.address} does not resolve on ${prev.name}` : why.toLowerCase();
    return new EnvError(
      `cannot reach ${hopLabel(host)} through ${prev.name}: ${cause}`,
      `check the address and port of ${host.name} and that ${prev.name} can reach ${target} (on ${prev.name}: nc -vz ${host.address} ${host.port})`,
      where(host, 'reach'),
    );
  }
  if (/Control socket connect/.test(log)) {
    return new EnvError(
      `the connection to ${prev.name} closed before ${host.name} could be reached through it`,
      `check the network path to ${prev.name}`,
      where(host, 'reach'),
    );
  }
  if (/Stdio forwarding request failed/.test(log)) {
    return new EnvError(
      `${prev.name} did not open a connection to ${hopLabel(host)}: the forwarding request was refused`,
      `check that ${prev.name} allows TCP forwarding for ${prev.user} (AllowTcpForwarding, PermitOpen in its sshd_config) and can reach ${target}`,
      where(host, 'forward'),
    );
  }
  return undefined;
}

/** The error given to onClose listeners when a master exits while the chain is open. */
export function droppedError(host: SshHost, log: string): EnvError {
  const said = lastLines(log, 2);
  return new EnvError(
    `the connection to ${hopLabel(host)} closed${said ? `: ${said}` : ''}`,
    `check the network path to ${host.name}`,
    where(host),
  );
}

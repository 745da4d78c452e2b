// The errors of forwarding over either ssh client (RemoteChain.openConnection,
// remoteForward, a channel with the agent), in one wording: a person sees the
// same message whichever client carried the forward, and a -L/-D/-R consumer
// can show it as a refused connection's reason.
import type { Endpoint } from '../forward/types.js';
import { EnvError } from '../errors.js';
import { hostPort } from '../host-port.js';
import { duration } from './errors.js';

/** `HOST:PORT` (brackets for IPv6) or the socket path. */
export function endpointText(e: Endpoint | { host: string; port: number }): string {
  return 'path' in e ? e.path : hostPort(e.host, e.port);
}

const where = (host: string): { host: string; step: string } => ({ host, step: 'forward' });

/**
 * Why a server refused to open a channel (RFC 4254 5.1): `prohibited` is its
 * policy (AllowTcpForwarding, PermitOpen, a key restriction), `connect-failed`
 * its own attempt to connect (`detail` says why: Connection refused, a name
 * that does not resolve).
 */
export interface OpenFailure {
  kind: 'prohibited' | 'connect-failed' | 'other';
  /** The server's own words, e.g. `Connection refused`; may be empty. */
  detail: string;
}

/** RFC 4254's reason codes, as ssh2 gives them (`err.reason`). */
export function openFailureOfCode(code: unknown, detail: string): OpenFailure {
  return { kind: code === 1 ? 'prohibited' : code === 2 ? 'connect-failed' : 'other', detail };
}

const RESOLVE =
  /Name or service not known|Temporary failure in name resolution|No address associated|nodename nor servname|Could not resolve/i;

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** `host`'s sshd refused to open a connection to `to` (direct-tcpip or direct-streamlocal). */
export function openRefused(host: string, to: Endpoint, f: OpenFailure): EnvError {
  const dest = endpointText(to);
  const isPath = 'path' in to;
  if (f.kind === 'prohibited') {
    return new EnvError(
      `${host} refused to open a connection to ${dest}: administratively prohibited (${isPath ? 'AllowStreamLocalForwarding' : 'AllowTcpForwarding or PermitOpen'} in the sshd_config of ${host}, or a restriction on the key)`,
      isPath
        ? `allow it on ${host}: AllowStreamLocalForwarding yes (or local) in its sshd_config, and no no-port-forwarding/restrict option on the key in authorized_keys`
        : `allow it on ${host}: AllowTcpForwarding yes (or local) and a PermitOpen that includes ${dest} in its sshd_config, and no no-port-forwarding/restrict/permitopen option on the key in authorized_keys`,
      where(host),
    );
  }
  if (f.kind === 'connect-failed' && isPath && /^open failed$/i.test(f.detail)) {
    // All sshd says for a socket path it would not or could not open (channel_connect_to_path): no errno, no policy code.
    return new EnvError(
      `${host} could not open ${dest}: "open failed", all sshd says when the socket does not exist there or PermitOpen in its sshd_config (which limits socket paths too) leaves it out`,
      `check that a server listens on ${dest} on ${host} (on ${host}: ls -l ${dest}); if one does, allow it: no PermitOpen (or PermitOpen any) and AllowStreamLocalForwarding yes (or local) in its sshd_config, and no permitopen/restrict option on the key`,
      where(host),
    );
  }
  if (f.kind === 'connect-failed') {
    const resolves = !isPath && RESOLVE.test(f.detail);
    const why = resolves ? `${to.host} does not resolve there` : lowerFirst(f.detail || 'connect failed');
    return new EnvError(
      `${host} could not connect to ${dest}: ${why}`,
      isPath
        ? `check that a server listens on ${dest} on ${host} (on ${host}: ls -l ${dest})`
        : resolves
          ? `check the name ${to.host}: it is resolved on ${host}, not here`
          : `check that something listens at ${dest} as ${host} sees it (on ${host}: nc -vz ${to.host} ${to.port})`,
      where(host),
    );
  }
  return new EnvError(
    `${host} did not open a connection to ${dest}${f.detail ? `: ${lowerFirst(f.detail)}` : ''}`,
    `check the sshd log on ${host}`,
    where(host),
  );
}

export function openTimeout(host: string, to: Endpoint, ms: number): EnvError {
  return new EnvError(
    `${host} did not open a connection to ${endpointText(to)} within ${duration(ms)}`,
    `check that ${host} can reach ${endpointText(to)} (a firewall that drops packets looks like this), and the network path to ${host}`,
    where(host),
  );
}

export function openClosed(host: string, to: Endpoint, cause?: unknown): EnvError {
  return forwardClosed(host, `open a connection to ${endpointText(to)} through ${host}`, cause);
}

/** The connection to `host` is gone, so `doing` (`listen for -R 8080:localhost:80 on target`) cannot be done. */
export function forwardClosed(host: string, doing: string, cause?: unknown): EnvError {
  return new EnvError(
    `cannot ${doing}: the connection to ${host} is closed`,
    `reconnect; check the network path to ${host}`,
    where(host),
    ...(cause ? [{ cause }] : []),
  );
}

/**
 * `host`'s sshd would not listen for a remote forward (-R `spec`). The
 * protocol carries no reason, so the hint lists the usual ones.
 */
export function listenRefused(
  host: string,
  spec: string,
  at: { host: string; port: number } | { path: string },
  detail?: string,
): EnvError {
  const isPath = 'path' in at;
  return new EnvError(
    `${host} refused to listen for -R ${spec}${detail ? `: ${detail}` : ''}`,
    isPath
      ? `the socket ${at.path} may already exist on ${host} (StreamLocalBindUnlink yes in its sshd_config replaces a stale one), or its sshd forbids it: AllowStreamLocalForwarding yes (or remote), and no no-port-forwarding/restrict option on the key`
      : `the port ${at.port} may be in use on ${host}, or its sshd forbids it: AllowTcpForwarding yes (or remote), PermitListen, GatewayPorts for an address other than loopback, and no no-port-forwarding/restrict option on the key`,
    where(host),
  );
}

/** A channel asked for the agent, but there is none to forward. */
export function noAgentToForward(host: string, why: string): EnvError {
  return new EnvError(
    `cannot forward the ssh-agent to ${host}: ${why}`,
    'start ssh-agent and add your key (eval "$(ssh-agent)" && ssh-add), or leave out agent forwarding (-A, forward_agent)',
    where(host),
  );
}

/** `host`'s sshd said no to agent forwarding (ssh2 asks wanting a reply; OpenSSH asks without). */
export function agentRefused(host: string, cause?: unknown): EnvError {
  return new EnvError(
    `${host} refused to forward the ssh-agent`,
    `allow it on ${host}: AllowAgentForwarding yes in its sshd_config, and no no-agent-forwarding/restrict option on the key in authorized_keys`,
    where(host),
    ...(cause ? [{ cause }] : []),
  );
}

/** A bug: only ConnectOptions.agentFor may ever get the agent. */
export function agentNotAllowed(host: string, agentFor: string | undefined): Error {
  return new Error(
    `bug: a channel on ${host} asked for the ssh-agent, but ${agentFor ? `only ${agentFor}` : 'no host'} of this chain may get it`,
  );
}

// Opening a jump chain: the first hop over TCP, each next one through the
// previous hop's `forwardOut` (what `ssh -J` does), every hop's host key
// checked against that hop's own known_hosts. This and the files it uses are
// the only code that touches ssh2, and they load it lazily.

import { connect as tcpConnect } from 'node:net';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type { ClientChannel, ServerHostKeyAlgorithm } from 'ssh2';
import type { SshHost } from '../config/types.js';
import { EnvError } from '../errors.js';
import { prepareAuth, type HopAuth } from './auth.js';
import { SshChain, closeHop, type Hop } from './chain.js';
import { connectError, forwardError, forwardTimeout, type HostKeySeen } from './hop-errors.js';
import { checkHostKey, keyTypeOfBlob, knownKeyTypes } from './known-hosts.js';
import { loadSsh2, type Ssh2Module } from './ssh2-module.js';

export { SshChain } from './chain.js';
export type { ExecResult, ExecUntilResult, CloseListener } from './chain.js';

export interface ConnectOptions {
  /** ssh-agent socket; defaults to $SSH_AUTH_SOCK. Pass `undefined` or '' explicitly to use no agent. */
  agent?: string | undefined;
  /** Per hop: TCP connect + SSH handshake + auth, and separately the previous hop's tunnel to it. */
  readyTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Called as each hop starts connecting, for progress output. */
  onHop?: (host: string) => void;
  /** Stops connecting: open hops are dropped and the promise rejects with the signal's reason. Not watched once the chain is returned; call `close()` then. */
  signal?: AbortSignal;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
const DEFAULT_KEEPALIVE_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 3;

// ssh2's supported host key algorithms, in its default order; listed here
// because a custom order must be a complete list.
const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

/**
 * Offer the key types known_hosts already has for this host first, as
 * OpenSSH does: a server with several host keys then presents one that can
 * be checked, instead of one that would look like a changed key.
 */
function hostKeyAlgorithms(knownTypes: string[]): ServerHostKeyAlgorithm[] {
  const preferred = knownTypes.flatMap((t) =>
    t === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [t],
  );
  const supported = preferred.filter((a): a is ServerHostKeyAlgorithm =>
    (HOST_KEY_ALGORITHMS as string[]).includes(a),
  );
  return [...new Set([...supported, ...HOST_KEY_ALGORITHMS])];
}

async function readKnownHosts(host: SshHost): Promise<{ text: string; missing: boolean }> {
  try {
    return { text: await readFile(host.known_hosts, 'utf8'), missing: false };
  } catch (err) {
    // A missing file only means no host is known yet; the unknown-key error says so.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { text: '', missing: true };
    throw new EnvError(
      `cannot read known_hosts file ${host.known_hosts} of ${host.name}: ${code ?? 'read failed'}`,
      `make it readable by this user, or fix known_hosts of ${host.name}`,
      { host: host.name, step: 'connect' },
      { cause: err },
    );
  }
}

interface HopPlan {
  host: SshHost;
  prev: SshHost | undefined;
  auth: HopAuth;
  known: { text: string; missing: boolean };
}

interface Settings {
  readyTimeoutMs: number;
  keepaliveIntervalMs: number;
  onDropped: (hop: Hop) => void;
}

function openHop(
  ssh2: Ssh2Module,
  plan: HopPlan,
  sock: Duplex,
  s: Settings,
  register: (hop: Hop) => void,
): Promise<Hop> {
  const { host, prev, auth, known } = plan;
  const client = new ssh2.Client();
  let closed = false;
  let lastError: Error | undefined;
  let markClosed!: () => void;
  const closedPromise = new Promise<void>((r) => (markClosed = r));
  let hostKey: HostKeySeen | undefined;
  const hop: Hop = {
    host,
    client,
    closed: closedPromise,
    isClosed: () => closed,
    lastError: () => lastError,
    destroy: () => sock.destroy(),
  };
  register(hop);

  return new Promise<Hop>((resolve, reject) => {
    let ready = false;
    const fail = (err: unknown): void => {
      if (ready) return;
      ready = true;
      sock.destroy();
      reject(connectError(err, host, prev, { tried: auth.tried, readyTimeoutMs: s.readyTimeoutMs, hostKey }));
    };
    client.on('error', (err) => {
      lastError = err;
      fail(err);
    });
    client.on('ready', () => {
      if (ready) return;
      ready = true;
      resolve(hop);
    });
    client.on('close', () => {
      closed = true;
      markClosed();
      if (ready) s.onDropped(hop);
      else fail(lastError ?? new Error('the server closed the connection during the SSH handshake'));
    });
    try {
      client.connect({
        sock,
        username: host.user,
        ...(auth.privateKey ? { privateKey: auth.privateKey } : {}),
        ...(auth.agent ? { agent: auth.agent } : {}),
        readyTimeout: s.readyTimeoutMs,
        keepaliveInterval: s.keepaliveIntervalMs,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(known.text, host.address, host.port)) },
        // Never leave this out: without a verifier ssh2 accepts any host key.
        hostVerifier: (key: Buffer): boolean => {
          const keyType = keyTypeOfBlob(key) ?? 'unknown';
          const verdict = checkHostKey(known.text, host.address, host.port, keyType, key);
          hostKey = { verdict, keyType, key, knownHostsMissing: known.missing };
          return verdict.status === 'ok';
        },
      });
    } catch (err) {
      fail(err);
    }
  });
}

/** Ask `prev` to open a TCP tunnel to `plan.host`, bounded in time since ssh2 never gives up on its own. */
function tunnel(prev: Hop, plan: HopPlan, timeoutMs: number): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(forwardTimeout(plan.host, prev.host, timeoutMs));
    }, timeoutMs);
    const finish = (err: unknown, stream: ClientChannel | undefined): void => {
      if (done) {
        stream?.close();
        return;
      }
      done = true;
      clearTimeout(timer);
      if (err || !stream) reject(forwardError(err, plan.host, prev.host));
      else resolve(stream);
    };
    try {
      prev.client.forwardOut('127.0.0.1', 0, plan.host.address, plan.host.port, (err, stream) =>
        finish(err, stream),
      );
    } catch (err) {
      finish(err, undefined);
    }
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('aborted', { cause: reason });
}

/**
 * Connect to `hops[0]` directly and to each next hop through the one before,
 * returning the open chain. On any failure or abort, whatever was opened is
 * closed before the promise rejects.
 */
export async function connectChain(hops: SshHost[], opts: ConnectOptions = {}): Promise<SshChain> {
  if (hops.length === 0) throw new Error('connectChain needs at least one host');
  const names = hops.map((h) => h.name);
  if (new Set(names).size !== names.length)
    throw new Error(`duplicate host in SSH chain: ${names.join(' → ')}`);
  const { signal } = opts;
  signal?.throwIfAborted();

  const ssh2 = await loadSsh2();
  const agentSock = 'agent' in opts ? opts.agent : process.env.SSH_AUTH_SOCK;
  const plans: HopPlan[] = await Promise.all(
    hops.map(async (host, i) => ({
      host,
      prev: hops[i - 1],
      auth: await prepareAuth(ssh2, host, agentSock || undefined),
      known: await readKnownHosts(host),
    })),
  );
  signal?.throwIfAborted();

  const readyTimeoutMs = opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  let chain: SshChain | undefined;
  const settings: Settings = {
    readyTimeoutMs,
    keepaliveIntervalMs: opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_MS,
    onDropped: (hop) => chain?.hopClosed(hop),
  };
  const opened: Hop[] = [];
  let stopped = false;

  const build = async (): Promise<Hop[]> => {
    for (const plan of plans) {
      opts.onHop?.(plan.host.name);
      const prev = opened[opened.length - 1];
      const sock: Duplex = prev
        ? await tunnel(prev, plan, readyTimeoutMs)
        : tcpConnect({ host: plan.host.address, port: plan.host.port });
      if (stopped) {
        sock.destroy();
        throw new Error('chain setup stopped');
      }
      await openHop(ssh2, plan, sock, settings, (hop) => opened.push(hop));
    }
    return opened;
  };

  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      stopped = true;
      // Drop sockets rather than say goodbye: the user asked to stop now.
      for (const hop of [...opened].reverse()) hop.destroy();
      reject(abortReason(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  // Only one of build/aborted settles the race; keep the other from being reported as unhandled.
  aborted.catch(() => undefined);

  try {
    const built = await Promise.race([build(), aborted]);
    chain = new SshChain(built);
    return chain;
  } catch (err) {
    stopped = true;
    for (const hop of [...opened].reverse()) await closeHop(hop);
    throw err;
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

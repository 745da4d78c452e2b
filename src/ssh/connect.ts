// Opening a jump chain with ssh2: the first hop over TCP, each next one through
// the previous hop's `forwardOut` (what `ssh -J` does), every hop's host key
// checked against its known_hosts files. This and the files it uses are the
// only code that touches ssh2, and they load it lazily.

import { appendFileSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ClientChannel, ServerHostKeyAlgorithm } from 'ssh2';
import type { SshHost } from '../config/types.js';
import { EnvError, Interrupted } from '../errors.js';
import { agentToForward, type AgentToForward } from '../transport/agent.js';
import { checkRoute, connectionDropped } from '../transport/errors.js';
import type { ConnectChain, ConnectOptions, Prompter } from '../transport/types.js';
import { authHandler, prepareAuth, type HopAuth } from './auth.js';
import { SshChain, closeHop, type Hop } from './chain.js';
import { connectError, forwardError, forwardTimeout, type HostKeySeen } from './hop-errors.js';
import {
  checkHostKey,
  keyTypeOfBlob,
  knownHostsLine,
  knownHostsName,
  knownKeyTypes,
  type KnownHostsText,
} from './known-hosts.js';
import { ssh2Refusal } from './limits.js';
import { loadSsh2, type Ssh2Module } from './ssh2-module.js';

export { SshChain } from './chain.js';

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

/** Every known_hosts file of a host, user files first; a missing file only means nothing is known yet. */
export async function readKnownHosts(host: SshHost): Promise<KnownHostsText[]> {
  const files = [...host.known_hosts, ...host.global_known_hosts];
  const texts = await Promise.all(
    files.map(async (file) => {
      try {
        return { file, text: await readFile(file, 'utf8') };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
        throw new EnvError(
          `cannot read known_hosts file ${file} of ${host.name}: ${code ?? 'read failed'}`,
          `make it readable by this user, or fix known_hosts of ${host.name}`,
          { host: host.name, step: 'connect', fault: 'host-key' },
          { cause: err },
        );
      }
    }),
  );
  return texts.filter((t): t is KnownHostsText => t !== undefined);
}

interface HopPlan {
  host: SshHost;
  prev: SshHost | undefined;
  auth: HopAuth;
  known: KnownHostsText[];
  /** ConnectOptions.agentFor's hop only: the agent its channels may forward. */
  agent?: AgentToForward;
}

interface Settings {
  ssh2: Ssh2Module;
  prompter: Prompter | undefined;
  onDropped: (hop: Hop) => void;
  /** The first hop other than `hop` (one before it, already open) whose connection has dropped. */
  droppedBefore: (hop: Hop) => Hop | undefined;
}

/** A connect timeout that stops while a person is typing at a prompt. */
export function promptAwareTimer(
  ms: number,
  onTimeout: () => void,
): { pause: () => void; resume: () => void; stop: () => void } {
  let left = ms;
  let started = Date.now();
  // A prompt answered after the hop failed (its connection dropped meanwhile) must not start the timer again.
  let stopped = false;
  let timer: NodeJS.Timeout | undefined = setTimeout(onTimeout, left);
  return {
    pause: () => {
      if (!timer || stopped) return;
      clearTimeout(timer);
      timer = undefined;
      left -= Date.now() - started;
    },
    resume: () => {
      if (timer || stopped) return;
      started = Date.now();
      timer = setTimeout(onTimeout, Math.max(left, 1000));
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

function openHop(plan: HopPlan, sock: Duplex, s: Settings, register: (hop: Hop) => void): Promise<Hop> {
  const { host, prev, auth, known } = plan;
  const client = new s.ssh2.Client();
  const timeoutMs = host.connect_timeout * 1000;
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
    ...(plan.agent ? { agent: plan.agent } : {}),
  };
  register(hop);
  const name = knownHostsName(host.address, host.port, host.host_key_alias);

  // Closes a prompt still open when this connect fails: nobody waits for its answer.
  const prompts = new AbortController();
  return new Promise<Hop>((resolve, reject) => {
    let ready = false;
    const fail = (err: unknown): void => {
      if (ready) return;
      ready = true;
      timer.stop();
      sock.destroy();
      prompts.abort(err);
      // Ctrl-C at a login prompt ends `up` as Ctrl-C anywhere does, not as a refused login.
      reject(
        err instanceof Interrupted
          ? err
          : connectError(err, host, prev, {
              tried: auth.tried,
              noKey: auth.noKey,
              readyTimeoutMs: timeoutMs,
              hostKey,
            }),
      );
    };
    const timer = promptAwareTimer(timeoutMs, () =>
      fail(Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' })),
    );
    client.on('error', (err: Error & { level?: string }) => {
      lastError = err;
      // An agent that cannot be reached is skipped, as ssh skips it; the next method is tried.
      if (err.level !== 'agent') fail(err);
    });
    client.on('ready', () => {
      if (ready) return;
      ready = true;
      timer.stop();
      resolve(hop);
    });
    client.on('close', () => {
      closed = true;
      markClosed();
      if (ready) s.onDropped(hop);
      // An inner hop's tunnel closes when a hop before it drops (its close event comes a moment later):
      // that hop is the one to blame, not this one's handshake.
      else
        setImmediate(() => {
          const outer = s.droppedBefore(hop);
          fail(
            outer
              ? connectionDropped(outer.host.name, `${host.name} was logging in through it`, lastError)
              : (lastError ?? new Error('the server closed the connection during the SSH handshake')),
          );
        });
    });
    try {
      client.connect({
        sock,
        username: host.user,
        authHandler: authHandler(host, auth, s.ssh2, s.prompter, {
          ...timer,
          interrupt: fail,
          signal: prompts.signal,
        }),
        // moshctl's own timer (above) pauses while a person answers a prompt; ssh2's would not.
        readyTimeout: 0,
        keepaliveInterval: host.server_alive_interval * 1000,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        // Only the hop that may forward the agent knows of one: no other hop's server can reach it.
        ...(plan.agent && 'socket' in plan.agent ? { agent: plan.agent.socket } : {}),
        algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(known, name)) },
        // Never leave this out: without a verifier ssh2 accepts any host key.
        hostVerifier: (key: Buffer): boolean => {
          const keyType = keyTypeOfBlob(key) ?? 'unknown';
          const verdict = checkHostKey(known, name, keyType, key);
          hostKey = { verdict, keyType, key, knownHostsMissing: known.length === 0 };
          if (verdict.status === 'ok') return true;
          if (verdict.status === 'unknown' && host.host_key_policy === 'accept-new')
            return acceptNew(host, name, keyType, key);
          return false;
        },
      });
    } catch (err) {
      fail(err);
    }
  });
}

/** accept-new: a host never seen before is recorded in the first user known_hosts file, as OpenSSH does. */
function acceptNew(host: SshHost, name: string, keyType: string, key: Buffer): boolean {
  const file = host.known_hosts[0];
  if (!file) return false;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    appendFileSync(file, knownHostsLine(name, keyType, key, host.hash_known_hosts), { mode: 0o600 });
    return true;
  } catch {
    // A key that cannot be recorded would be "new" again next time: refuse, as ssh does.
    return false;
  }
}

/** Ask `prev` to open a TCP tunnel to `plan.host`, bounded in time since ssh2 never gives up on its own. */
function tunnel(prev: Hop, plan: HopPlan): Promise<ClientChannel> {
  const timeoutMs = plan.host.connect_timeout * 1000;
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
export const connectChain: ConnectChain = async (hops, opts: ConnectOptions = {}) => {
  checkRoute(hops, 'connectChain');
  const { signal } = opts;
  signal?.throwIfAborted();

  const ssh2 = await loadSsh2();
  const agentSock = 'agent' in opts ? opts.agent : process.env.SSH_AUTH_SOCK;
  const settled = await Promise.allSettled(
    hops.map(async (host, i) => {
      const known = await readKnownHosts(host);
      // What ssh2 cannot do is refused before any hop is dialled, naming the way out.
      const refusal = ssh2Refusal(host, known);
      if (refusal) throw refusal;
      return {
        host,
        prev: hops[i - 1],
        auth: await prepareAuth(ssh2, host, agentSock || undefined, opts.prompter),
        known,
        ...(host.name === opts.agentFor ? { agent: agentToForward(host, opts) } : {}),
      };
    }),
  );
  // Hops are checked at once, but the one reported is the first in the route, every time.
  const plans: HopPlan[] = settled.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
  signal?.throwIfAborted();

  const chain = new SshChain();
  chain.agentFor = opts.agentFor;
  const opened: Hop[] = [];
  const settings: Settings = {
    ssh2,
    prompter: opts.prompter,
    onDropped: (hop) => chain.hopClosed(hop),
    droppedBefore: (hop) => opened.find((h) => h !== hop && h.isClosed()),
  };
  let stopped = false;

  const build = async (): Promise<void> => {
    for (const plan of plans) {
      opts.onHop?.(plan.host.name);
      const prev = opened[opened.length - 1];
      let sock: Duplex;
      if (prev) sock = await tunnel(prev, plan);
      else {
        // Nagle off, as OpenSSH's own client does: ssh2 never turns it off, and every small
        // write behind an unacknowledged one (a window adjust, then mosh's next datagram)
        // waited for the server's delayed ACK, 40 ms, as did each hop's handshake messages.
        const tcp: Socket = tcpConnect({ host: plan.host.address, port: plan.host.port, noDelay: true });
        // mosh-client takes only a numeric address: the one this connection really reached.
        tcp.once('connect', () => {
          chain.reachedAddress = tcp.remoteAddress;
          chain.localAddress = tcp.localAddress;
        });
        sock = tcp;
      }
      if (stopped) {
        sock.destroy();
        throw new Error('chain setup stopped');
      }
      const hop = await openHop(plan, sock, settings, (h) => opened.push(h));
      if (stopped) throw new Error('chain setup stopped');
      chain.add(hop);
      opts.onReady?.(chain, opened.length);
    }
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
    await Promise.race([build(), aborted]);
    return chain;
  } catch (err) {
    stopped = true;
    for (const hop of [...opened].reverse()) await closeHop(hop);
    throw err;
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
};

// Opening a jump chain with the user's own OpenSSH client: one ControlMaster
// per hop, each inner hop reached by a stdio forward through the previous
// hop's master. Certificates, FIDO keys, host CAs, GSSAPI, ProxyCommand,
// PKCS#11 and the rest of ssh_config then work as they do for ssh.

import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFileSync, statSync } from 'node:fs';
import type { SshHost } from '../config/types.js';
import { EnvError } from '../errors.js';
import { agentToForward } from '../transport/agent.js';
import { checkRoute, connectionDropped } from '../transport/errors.js';
import type { ConnectChain, ConnectOptions } from '../transport/types.js';
import { findOnPath } from '../which.js';
import { controlPath, isShellSafe, logPath, masterArgv, type OwnGroup, type SignalReset } from './argv.js';
import { OpenSshChain } from './chain.js';
import { makeControlDir, removeControlDir } from './control-dir.js';
import { isEncryptedKey, masterFailure, parseReachedAddress } from './failures.js';
import { readKnownHosts } from '../ssh/connect.js';
import { Master, MasterExited } from './master.js';

export { OpenSshChain } from './chain.js';

function findSsh(hops: readonly SshHost[]): string {
  const ssh = findOnPath('ssh', process.env.PATH);
  if (!ssh) {
    throw new EnvError(
      'ssh_client: openssh needs the OpenSSH client (ssh), which is not installed',
      'install it (apt install openssh-client, or your system’s openssh package), or set ssh_client: ssh2 to use the built-in client',
      { ...(hops[0] ? { host: hops[0].name } : {}), step: 'connect' },
    );
  }
  // Inner hops name it in a ProxyCommand, which ssh runs through the shell.
  if (hops.length > 1 && !isShellSafe(ssh)) {
    throw new EnvError(
      `the ssh program found on PATH (${ssh}) has characters a shell would interpret in its path`,
      'put an ssh whose path has only letters, digits and / . _ - first on PATH',
      { step: 'connect' },
    );
  }
  return ssh;
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('aborted', { cause: reason });
}

/**
 * OpenSSH writes "Confirm user presence for key …" only when its stderr is a
 * terminal, and a master's is not: a hop with a security key file gets the
 * reminder from moshctl instead.
 */
function securityKeyNote(host: SshHost): string | undefined {
  const sk = host.identity_files.find((f) => {
    try {
      return readFileSync(f.endsWith('.pub') ? f : `${f}.pub`, 'utf8').startsWith('sk-');
    } catch {
      return false;
    }
  });
  return sk ? `${host.name}: touch your security key when it blinks (${sk})` : undefined;
}

/** Whether the agent ssh will use for `host` has a socket: IdentityAgent, else moshctl's default, else SSH_AUTH_SOCK. */
function agentSocketExists(host: SshHost, defaultAgent: string | undefined): boolean {
  const path = host.identity_agent ?? defaultAgent ?? process.env.SSH_AUTH_SOCK;
  if (!path || path === 'none') return false;
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** The identity files of `host` that need a passphrase (missing or unreadable ones are left to ssh). */
function encryptedKeys(host: SshHost): string[] {
  return host.identity_files.filter((file) => {
    try {
      return isEncryptedKey(readFileSync(file));
    } catch {
      return false;
    }
  });
}

let signalReset: Promise<SignalReset | undefined> | undefined;

/** Which program here can start a ProxyCommand with HUP and INT at their defaults (argv.ts proxyWithSignals). */
function signalResetHere(): Promise<SignalReset | undefined> {
  const works = (cmd: string, args: string[]): Promise<boolean> =>
    new Promise((done) => execFile(cmd, args, { timeout: 5_000 }, (err) => done(!err)));
  signalReset ??= (async () =>
    (await works('env', ['--default-signal=HUP', 'true']))
      ? 'env'
      : (await works('perl', ['-e', '1']))
        ? 'perl'
        : undefined)();
  return signalReset;
}

let ownGroup: Promise<OwnGroup | undefined> | undefined;

/** Which program here can start an inner hop's -W ProxyCommand in a process group of its own (argv.ts ownGroupPrefix). */
function ownGroupHere(): Promise<OwnGroup | undefined> {
  const works = (cmd: string, args: string[]): Promise<boolean> =>
    new Promise((done) => execFile(cmd, args, { timeout: 5_000 }, (err) => done(!err)));
  ownGroup ??= (async () =>
    (await works('setsid', ['true']))
      ? 'setsid'
      : (await works('perl', ['-e', 'setpgrp(0, 0) or die']))
        ? 'perl'
        : undefined)();
  return ownGroup;
}

/** mosh-client takes only a numeric address: the one the first connection reached. */
async function reachedAddress(first: SshHost, master: Master): Promise<string | undefined> {
  if (first.proxy_command) return undefined;
  const seen = parseReachedAddress(master.log);
  if (seen) return seen;
  // An OpenSSH too old to log the line: the address as this machine resolves it.
  try {
    return (await lookup(first.address)).address;
  } catch {
    return undefined;
  }
}

/**
 * Start a master for each hop in order (each needs the one before), and
 * resolve once every control socket exists. On any failure or abort, every
 * master started is stopped and the directory removed before the promise rejects.
 */
export const connectOpenSshChain: ConnectChain = async (hops, opts: ConnectOptions = {}) => {
  checkRoute(hops, 'connectOpenSshChain');
  const { signal } = opts;
  signal?.throwIfAborted();
  const sshPath = findSsh(hops);
  const signalReset = hops[0]?.proxy_command ? await signalResetHere() : undefined;
  // Found while the first hop connects: only the hops behind it need it.
  const ownGroup = hops.length > 1 ? ownGroupHere() : Promise.resolve(undefined);
  // ssh takes an unreadable known_hosts for one without the key, and would say the key is unknown.
  for (const h of hops) await readKnownHosts(h);
  signal?.throwIfAborted();
  const controlDir = makeControlDir(hops.length);
  // ConnectOptions.agent applies to hosts that name no agent; absent, ssh's own default ($SSH_AUTH_SOCK).
  const defaultAgent = 'agent' in opts ? (opts.agent ?? 'none') : undefined;
  const masters: Master[] = [];
  const chain = new OpenSshChain(controlDir, sshPath);
  const agentHost = hops.find((h) => h.name === opts.agentFor);
  chain.agentFor = agentHost ? { host: agentHost.name, agent: agentToForward(agentHost, opts) } : undefined;

  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      // TERM at once rather than wait for the hop being dialled: the user asked to stop now.
      for (const m of [...masters].reverse()) m.kill();
      reject(abortReason(signal as AbortSignal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  // Only one of the steps and `aborted` settles each race; keep the other from being reported as unhandled.
  aborted.catch(() => undefined);

  try {
    for (const [i, host] of hops.entries()) {
      opts.onHop?.(host.name);
      const prev = masters[i - 1];
      const prevLogStart = prev?.logPosition ?? 0;
      const argv = masterArgv({
        host,
        index: i,
        controlDir,
        sshPath,
        prev: prev?.host,
        sshConfigFile: opts.sshConfigFile,
        defaultAgent,
        forwardAgent: host.name === opts.agentFor,
        signalReset,
        ownGroup: i > 0 ? await ownGroup : undefined,
      });
      const say = opts.prompter?.say.bind(opts.prompter);
      const note = securityKeyNote(host);
      if (note) say?.(note);
      const master = new Master(host, controlPath(controlDir, i), logPath(controlDir, i), sshPath, argv, say);
      masters.push(master);
      // A hop before this one whose master exited (its connection dropped) is the one to blame;
      // this hop's ssh may sit at a prompt until stopped, not noticing its tunnel is gone.
      const dropped = (): EnvError | undefined => {
        const gone = masters.slice(0, i).find((m) => !m.running);
        return gone ? connectionDropped(gone.host.name, `${host.name} was logging in through it`) : undefined;
      };
      const outerGone = masters.slice(0, i).map((m) =>
        m.exited.then(() => {
          throw dropped() ?? new Error('bug: a hop before exited without being counted');
        }),
      );
      for (const g of outerGone) g.catch(() => undefined);
      try {
        await Promise.race([master.ready(), aborted, ...outerGone]);
        master.quiet();
        if (i === 0) chain.reachedAddress = await Promise.race([reachedAddress(host, master), aborted]);
        chain.add(master);
        opts.onReady?.(chain, i + 1);
      } catch (err) {
        if (!(err instanceof MasterExited)) throw err;
        // The previous master logged a refused forward before it answered the stdio forward.
        throw (
          dropped() ??
          masterFailure({
            host,
            prev: prev?.host,
            log: `${master.log}\n${master.stderr}`,
            stderr: master.stderr,
            prevLog: prev ? prev.logSince(prevLogStart) : '',
            agent: agentSocketExists(host, defaultAgent),
            interactive: opts.prompter?.interactive === true,
            encryptedKeys: encryptedKeys(host),
          })
        );
      }
    }
    return chain;
  } catch (err) {
    await Promise.all([...masters].reverse().map((m) => m.stop()));
    removeControlDir(controlDir);
    throw err;
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
};

// Binding the listener of a local or dynamic forward on this machine, as ssh
// binds it: loopback unless asked otherwise, `*` on every interface, a Unix
// socket only its owner can connect to. A failure says which forward and what
// to do, since it stops `up` before anything runs.
import { chmod, lstat, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { EnvError } from '../../errors.js';
import { hostPort } from '../../host-port.js';
import type { ForwardSpec } from '../../forward/types.js';

/** How long a socket left at a path may take to answer before it counts as live (someone else's). */
const STALE_PROBE_MS = 1_000;

/** What close() needs to remove a Unix socket, and only the one it bound. */
export interface Bound {
  /** The TCP port bound (the chosen one when the spec said 0). */
  port?: number;
  path?: string;
  /** The socket file's identity when bound: a file put there later by someone else is left alone. */
  ino?: number;
  dev?: number;
}

/** Binds `server` where `spec.listen` says; rejects with an EnvError naming the forward. */
export async function bindListener(server: net.Server, spec: ForwardSpec): Promise<Bound> {
  const l = spec.listen;
  if ('path' in l) return bindPath(server, spec, l.path);
  // As ssh: no address is loopback only; `*` is every interface, IPv6 too where this machine has it.
  const host = l.host ?? '127.0.0.1';
  try {
    if (host === '*') {
      try {
        await listenOn(server, () => server.listen({ port: l.port, host: '::', ipv6Only: false }));
      } catch (e) {
        if (!['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(errno(e))) throw e;
        await listenOn(server, () => server.listen({ port: l.port, host: '0.0.0.0' }));
      }
    } else await listenOn(server, () => server.listen({ port: l.port, host }));
  } catch (e) {
    throw bindError(spec, hostPort(host, l.port), e);
  }
  const address = server.address();
  return typeof address === 'object' && address ? { port: address.port } : {};
}

async function bindPath(server: net.Server, spec: ForwardSpec, path: string): Promise<Bound> {
  try {
    await clearStale(spec, path);
    // ssh binds with umask 0177 (StreamLocalBindMask): the socket is 0600 from its first moment.
    // The bind is synchronous inside listen(), so the process-wide umask is narrowed only around it.
    await listenOn(server, () => withUmask(0o177, () => server.listen(path)));
    await chmod(path, 0o600);
    const st = await stat(path);
    return { path, ino: st.ino, dev: st.dev };
  } catch (e) {
    throw e instanceof EnvError ? e : bindError(spec, path, e);
  }
}

/** Removes a socket file nobody answers on (left by a crash); refuses anything else. */
async function clearStale(spec: ForwardSpec, path: string): Promise<void> {
  const st = await lstat(path).catch((e: unknown) => {
    if (errno(e) === 'ENOENT') return undefined;
    throw e;
  });
  if (!st) return;
  const where = `${spec.text} (${spec.source})`;
  if (!st.isSocket()) {
    throw new EnvError(
      `${where}: cannot listen on ${path}: a file that is not a socket is there`,
      `remove ${path} if it is not needed, or choose another path`,
      { step: 'port-forward' },
    );
  }
  if (await answers(path)) {
    throw new EnvError(
      `${where}: cannot listen on ${path}: another program listens there`,
      `stop the program that listens on ${path} (another moshctl or ssh session?), or choose another path`,
      { step: 'port-forward' },
    );
  }
  await unlink(path);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(path);
    const done = (live: boolean): void => {
      clearTimeout(timer);
      probe.destroy();
      resolve(live);
    };
    // Only a refusal proves nobody is there; anything else (EACCES, no answer) may be someone's.
    const timer = setTimeout(() => done(true), STALE_PROBE_MS);
    probe.once('connect', () => done(true));
    probe.once('error', (e) => done(errno(e) !== 'ECONNREFUSED'));
  });
}

/** Removes the socket file bound at `bound.path` if it is still that one. */
export async function removeBound(bound: Bound): Promise<void> {
  if (!bound.path) return;
  const st = await lstat(bound.path).catch(() => undefined);
  if (st?.isSocket() && st.ino === bound.ino && st.dev === bound.dev)
    await unlink(bound.path).catch(() => {});
}

function listenOn(server: net.Server, listen: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening);
      reject(e);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    listen();
  });
}

function withUmask(mask: number, fn: () => void): void {
  let old: number | undefined;
  try {
    old = process.umask(mask);
  } catch {
    // Worker threads cannot set it: the chmod after the bind narrows it a moment later, and the
    // usual umask 022 already keeps others out meanwhile (connecting needs write permission).
  }
  try {
    fn();
  } finally {
    if (old !== undefined) process.umask(old);
  }
}

function bindError(spec: ForwardSpec, where: string, e: unknown): EnvError {
  const code = errno(e);
  const port = 'port' in spec.listen ? spec.listen.port : undefined;
  const [why, hint] =
    code === 'EADDRINUSE'
      ? [
          'the address is in use',
          port !== undefined
            ? `stop what listens there (\`ss -ltnp 'sport = :${port}'\` shows it), or choose another port in ${spec.source}`
            : `stop what listens there, or choose another path in ${spec.source}`,
        ]
      : code === 'EACCES'
        ? [
            'permission denied',
            port !== undefined
              ? `ports below 1024 need root: choose a port above 1023 in ${spec.source}`
              : 'check that the directory exists and that you may create files in it',
          ]
        : code === 'EADDRNOTAVAIL'
          ? [
              'it is not an address of this machine',
              'choose an address of this machine, or leave it out for loopback',
            ]
          : code === 'ENOENT'
            ? ['the directory does not exist', 'create the directory first, or choose another path']
            : [e instanceof Error ? e.message : String(e), `check ${spec.source}`];
  return new EnvError(
    `${spec.text} (${spec.source}): cannot listen on ${where}: ${why}`,
    hint,
    {
      step: 'port-forward',
    },
    { cause: e },
  );
}

function errno(e: unknown): string {
  return (e as NodeJS.ErrnoException | undefined)?.code ?? '';
}

// mosh-client in the foreground: it owns the terminal until it exits. The key
// travels in its environment only (mosh-client unsets it after reading), never
// in argv where `ps` on this machine would show it.
import { EnvError } from '../errors.js';
import type { ClientProgram } from '../plan/types.js';

export interface ClientProcess {
  /** Resolves with mosh-client's exit code (128 + signal number when killed). */
  exited: Promise<number>;
  kill: (signal: NodeJS.Signals) => void;
}

/**
 * execa takes ~60 ms to load; loading it while the remote execs of set-up wait
 * keeps that off the path to mosh-client's first frame.
 */
export function preloadClient(): void {
  import('execa').catch(() => undefined);
}

/**
 * `program`: mosh.client and the variables mosh's wrapper sets for --predict,
 * --predict-overwrite and --no-init; the rest of the environment is moshctl's.
 */
export async function startMoshClient(
  program: ClientProgram,
  address: string,
  port: number,
  key: string,
): Promise<ClientProcess> {
  const { execa } = await import('execa');
  const { constants } = await import('node:os');
  const child = execa(program.path, [address, String(port)], {
    stdio: 'inherit',
    env: { ...program.env, MOSH_KEY: key },
    extendEnv: true,
    reject: false,
    // Kills mosh-client if moshctl dies (not on SIGKILL); teardown still needs the record then.
    cleanup: true,
  });
  const exited = child.then((r) => {
    if (r.failed && r.exitCode === undefined && !r.signal) {
      throw new EnvError(
        `cannot run mosh-client (${program.path}): ${(r.shortMessage ?? 'failed to start').replaceAll(key, '<key>')}`,
        clientMissingHint(program.path),
        { host: 'local', step: 'client' },
      );
    }
    if (r.signal) return 128 + (constants.signals[r.signal] ?? 0);
    return r.exitCode ?? 1;
  });
  return { exited, kill: (signal) => void child.kill(signal) };
}

/** How to get a mosh-client moshctl can run: install mosh, or name it (mosh.client, --client). */
export function clientMissingHint(path: string): string {
  const install = 'install mosh on this machine (Debian/Ubuntu: apt install mosh; macOS: brew install mosh)';
  return path === 'mosh-client'
    ? `${install}, or name the one you have with mosh.client or up --client PATH`
    : `check mosh.client (or --client): ${path} must be mosh-client on this machine; or ${install}`;
}

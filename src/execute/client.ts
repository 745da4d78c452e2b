// mosh-client in the foreground: it owns the terminal until it exits. The key
// travels in its environment only (mosh-client unsets it after reading), never
// in argv where `ps` on this machine would show it.
import { EnvError } from '../errors.js';

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

export async function startMoshClient(address: string, port: number, key: string): Promise<ClientProcess> {
  const { execa } = await import('execa');
  const { constants } = await import('node:os');
  const child = execa('mosh-client', [address, String(port)], {
    stdio: 'inherit',
    env: { MOSH_KEY: key },
    extendEnv: true,
    reject: false,
    // Kills mosh-client if moshctl dies (not on SIGKILL); teardown still needs the record then.
    cleanup: true,
  });
  const exited = child.then((r) => {
    if (r.failed && r.exitCode === undefined && !r.signal) {
      throw new EnvError(
        `cannot run mosh-client: ${(r.shortMessage ?? 'failed to start').replaceAll(key, '<key>')}`,
        'install mosh on this machine (Debian/Ubuntu: apt install mosh-client or mosh; macOS: brew install mosh)',
        { host: 'local', step: 'client' },
      );
    }
    if (r.signal) return 128 + (constants.signals[r.signal] ?? 0);
    return r.exitCode ?? 1;
  });
  return { exited, kill: (signal) => void child.kill(signal) };
}

// mosh-client in the foreground: it owns the terminal until it exits. The key
// travels in its environment only (mosh-client unsets it after reading), never
// in argv where `ps` on this machine would show it.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { EnvError } from '../errors.js';
import type { ClientProgram } from '../plan/types.js';

export interface ClientProcess {
  /** Resolves with mosh-client's exit code (128 + signal number when killed). */
  exited: Promise<number>;
  kill: (signal: NodeJS.Signals) => void;
}

/**
 * `program`: mosh.client and the variables mosh's wrapper sets for --predict,
 * --predict-overwrite and --no-init; the rest of the environment is moshctl's.
 * Node's own child_process, not execa: loading execa took ~60-90 ms of the
 * main thread, which set-up could only spend while its remote execs ran, and
 * ssh2 decrypts their replies on that same thread (the exec request waits for
 * the channel's confirmation).
 */
export function startMoshClient(
  program: ClientProgram,
  address: string,
  port: number,
  key: string,
): Promise<ClientProcess> {
  const child = spawn(program.path, [address, String(port)], {
    stdio: 'inherit',
    env: { ...process.env, ...program.env, MOSH_KEY: key },
  });
  // mosh-client must not outlive moshctl (an exit without teardown, a second
  // Ctrl-C); a SIGKILL to moshctl is the one case left to the terminal's hangup.
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', (e) => {
      process.removeListener('exit', killOnExit);
      reject(
        new EnvError(
          `cannot run mosh-client (${program.path}): ${e.message.replaceAll(key, '<key>')}`,
          clientMissingHint(program.path),
          { host: 'local', step: 'client' },
        ),
      );
    });
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      if (signal) resolve(128 + (constants.signals[signal] ?? 0));
      else resolve(code ?? 1);
    });
  });
  return Promise.resolve({ exited, kill: (signal) => void child.kill(signal) });
}

/** How to get a mosh-client moshctl can run: install mosh, or name it (mosh.client, --client). */
export function clientMissingHint(path: string): string {
  const install = 'install mosh on this machine (Debian/Ubuntu: apt install mosh; macOS: brew install mosh)';
  return path === 'mosh-client'
    ? `${install}, or name the one you have with mosh.client or up --client PATH`
    : `check mosh.client (or --client): ${path} must be mosh-client on this machine; or ${install}`;
}

// doctor's look at this machine: which mosh-client `up` would run and its
// version, from `mosh-client --version` (run without a shell, at most 5 s).
import { execFile } from 'node:child_process';
import { findProgram } from '../which.js';

export type ClientFacts =
  | { state: 'ok'; path: string; version: string }
  | { state: 'missing'; path: string }
  | { state: 'broken'; path: string; said: string };

/** `program`: mosh.client, a path or a name looked up on `env.PATH`. */
export function localClientFacts(
  program: string,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ClientFacts> {
  const path = findProgram(program, env.PATH);
  if (path === undefined) return Promise.resolve({ state: 'missing', path: program });
  return new Promise((resolve) => {
    execFile(path, ['--version'], { timeout: 5_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const first = `${stdout}\n${stderr}`.split('\n').find((l) => l.trim() !== '') ?? '';
      if (!error && /mosh/i.test(first)) resolve({ state: 'ok', path, version: first.trim() });
      else resolve({ state: 'broken', path, said: (first || error?.message || 'no output').trim() });
    });
  });
}

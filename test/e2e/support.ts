// Shared by the e2e test files: whether this machine can run them at all, and
// one lab per test file (built in beforeAll, removed in afterAll).

import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { Lab, type LabOptions } from '../../src/lab/index.js';

const NEEDED_PROGRAMS = [
  '/usr/sbin/sshd',
  'ssh',
  'ssh-keygen',
  'mosh-server',
  'mosh-client',
  'nc',
  'nft',
  'tmux',
  'python3',
  // Lab.create's cleanup of stale labs takes a lock with flock; the client user's commands run under unshare.
  'flock',
  'unshare',
];

function onPath(program: string): boolean {
  if (program.startsWith('/')) {
    try {
      accessSync(program, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  }
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

function findReason(): string | undefined {
  if (process.platform !== 'linux') return 'e2e tests need Linux network namespaces';
  if (process.getuid?.() !== 0)
    return 'e2e tests build network namespaces and need root (sudo npm run test:e2e)';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore' }).status !== 0) return 'e2e tests need iproute2 (`ip`)';
  const missing = NEEDED_PROGRAMS.filter((p) => !onPath(p));
  if (missing.length > 0) return `e2e tests need these programs: ${missing.join(', ')}`;
  // Root in a container may still be refused namespaces; try one.
  const probe = `mctlprobe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `\`ip netns add\` fails here: ${add.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  return undefined;
}

/** The session tests run under both ssh clients: the built-in ssh2 and the user's own OpenSSH. */
export const SSH_CLIENTS = ['ssh2', 'openssh'] as const;

let cached: { reason: string | undefined } | undefined;

/** Why e2e tests cannot run here, or undefined when they can. Warns once per file. */
export function e2eSkipReason(): string | undefined {
  if (!cached) {
    cached = { reason: findReason() };
    if (cached.reason) console.warn(`skipping e2e tests: ${cached.reason}`);
  }
  return cached.reason;
}

/**
 * Build one lab for the enclosing describe block. Call it inside the
 * describe (so a skipped block builds nothing) and read `.lab` in tests.
 */
export function useLab(opts: LabOptions = {}): { readonly lab: Lab } {
  let lab: Lab | undefined;
  beforeAll(async () => {
    const started = performance.now();
    lab = await Lab.create(opts);
    console.log(
      `lab ${lab.runId} (${opts.bastions ?? 1} bastion) up in ${Math.round(performance.now() - started)} ms`,
    );
  });
  afterAll(async () => {
    await lab?.destroy();
  });
  return {
    get lab(): Lab {
      if (!lab) throw new Error('the lab was not created (did beforeAll fail?)');
      return lab;
    },
  };
}

/**
 * Every file a root session on a lab host could run as each of `programs`
 * (Debian's, /usr/local's, and for python3 pyenv's shim, which root's .bashrc
 * puts first on PATH), resolved, for `LabOptions.hide`: bind-mounted over with
 * /dev/null for that host's sshd, they exist but cannot execute.
 */
export function programFiles(programs: readonly ('python3' | 'perl' | 'socat')[]): string[] {
  const candidates = programs.flatMap((p) => [
    `/usr/bin/${p}`,
    `/usr/local/bin/${p}`,
    ...(p === 'python3' ? [join(homedir(), '.pyenv/shims/python3')] : []),
  ]);
  return [...new Set(candidates.filter((p) => existsSync(p)).map((p) => realpathSync(p)))];
}

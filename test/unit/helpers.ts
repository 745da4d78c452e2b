// Runs the CLI in-process in a temporary folder and captures what it prints.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach } from 'vitest';
import { main } from '../../src/cli/main.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh folder with the given files (path → content). */
export function tempTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'moshctl-test-'));
  dirs.push(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function run(
  argv: string[],
  opts: { cwd: string; env?: Record<string, string | undefined>; tty?: boolean },
): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: opts.env ?? { USER: 'tester', HOME: '/home/tester' },
    cwd: opts.cwd,
    stdinIsTTY: opts.tty ?? false,
  });
  // Paths of temp folders differ per run; tests compare text with them masked.
  return { code, stdout: stdout.replaceAll(opts.cwd, '<dir>'), stderr: stderr.replaceAll(opts.cwd, '<dir>') };
}

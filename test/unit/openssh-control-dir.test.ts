import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeControlDir, removeControlDir } from '../../src/openssh/control-dir.js';

const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const d = mkdtempSync(join(tmpdir(), 'oc-unit-'));
  made.push(d);
  return d;
}

describe('makeControlDir', () => {
  it('makes a private directory under XDG_RUNTIME_DIR when it is usable', () => {
    const runtime = scratch();
    const dir = makeControlDir(3, { XDG_RUNTIME_DIR: runtime });
    expect(dirname(dir)).toBe(runtime);
    expect(dir).toMatch(/\/moshctl-[A-Za-z0-9]{6}$/);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    removeControlDir(dir);
    expect(existsSync(dir)).toBe(false);
  });

  it('falls back to the temporary directory when XDG_RUNTIME_DIR is too long, missing or not a path', () => {
    const long = join(scratch(), 'x'.repeat(80));
    mkdirSync(long);
    for (const xdg of [long, join(scratch(), 'absent'), 'relative/dir']) {
      const dir = makeControlDir(2, { XDG_RUNTIME_DIR: xdg });
      made.push(dir);
      expect(dirname(dir)).not.toBe(xdg);
      expect(Buffer.byteLength(`${dir}/1`) + 17).toBeLessThanOrEqual(103);
    }
  });
});

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeControlDir, removeControlDir, sweepAbandoned } from '../../src/openssh/control-dir.js';

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
  it('makes a private directory under XDG_RUNTIME_DIR when it is usable, naming its owner', () => {
    const runtime = scratch();
    const dir = makeControlDir(3, { XDG_RUNTIME_DIR: runtime });
    expect(dirname(dir)).toBe(runtime);
    expect(dir).toMatch(/\/moshctl-cm-[A-Za-z0-9]{6}$/);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(existsSync(join(dir, 'owner'))).toBe(true);
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

describe('sweepAbandoned', () => {
  it('removes directories whose owner died, and old ones without an owner; keeps the rest', () => {
    const base = scratch();
    const dead = spawnSync('true').pid;
    const dir = (name: string, owner?: number): string => {
      const d = join(base, name);
      mkdirSync(d);
      if (owner !== undefined) writeFileSync(join(d, 'owner'), String(owner));
      return d;
    };
    const orphan = dir('moshctl-cm-aaaaaa', dead);
    const mine = dir('moshctl-cm-bbbbbb', process.pid);
    const fresh = dir('moshctl-cm-cccccc');
    const stale = dir('moshctl-cm-dddddd');
    const old = new Date(Date.now() - 5 * 60_000);
    utimesSync(stale, old, old);
    const other = dir('moshctl-lab-abc123-xyzXYZ', dead);
    expect(sweepAbandoned(base).sort()).toEqual([orphan, stale]);
    for (const d of [mine, fresh, other]) expect(existsSync(d)).toBe(true);
  });
});

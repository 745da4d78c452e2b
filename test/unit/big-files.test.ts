// A moshproxy.yaml generated from an inventory of 20 000 hosts
// (scripts/gen-inventory.mjs): validate says ok, plan finds a host three
// bastions deep, and the limits still refuse what they are for. How fast is
// measured by the benchmark (docs/benchmarks.md), not here.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/config/limits.js';
import { run } from './helpers.js';

const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'moshctl-big-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// No PATH: ssh_config is not consulted, so the route is the file's alone.
const ENV = { USER: 'tester', HOME: '/home/tester' };

/** Writes an inventory with gen-inventory.mjs; returns its path and the line it printed. */
function inventory(name: string, ...options: string[]): { file: string; said: string } {
  const file = join(dir, name);
  const said = execFileSync(
    process.execPath,
    [join(root, 'scripts/gen-inventory.mjs'), ...options, '--out', file],
    {
      encoding: 'utf8',
    },
  );
  return { file, said };
}

describe('a moshproxy.yaml of 20 000 hosts', () => {
  it('validates, and plan shows the route to a host behind three bastions', async () => {
    const { file, said } = inventory('inventory.yaml');
    expect(said).toContain(': 20000 hosts and 300 bastions, ');
    expect(said).toContain('host-00002: local → bastion-2 → bastion-102 → bastion-202 → host-00002');
    expect(await run(['-f', file, 'validate'], { cwd: dir, env: ENV })).toEqual({
      code: 0,
      stdout: 'ok\n',
      stderr: '',
    });

    const plan = await run(['-f', file, 'plan', 'host-00002'], { cwd: dir, env: ENV });
    expect(plan.stderr).toBe('');
    expect(plan.code).toBe(0);
    expect(plan.stdout.split('\n')[0]).toBe(
      'moshctl up host-00002: local → bastion-2 → bastion-102 → bastion-202 → host-00002',
    );
    // The third bastion relays to the host, on the ports the file gives it.
    expect(plan.stdout).toMatch(
      /relay +bastion-202 +UDP relay \(python3, else perl, else socat\) on a free port in 60200-60299/,
    );
  }, 30_000);

  it('validates with every field set on every host, in block and in flow style', async () => {
    for (const style of [[], ['--flow']]) {
      const { file } = inventory(`full${style.join('')}.yaml`, '--full', ...style);
      expect(await run(['-f', file, 'validate'], { cwd: dir, env: ENV })).toEqual({
        code: 0,
        stdout: 'ok\n',
        stderr: '',
      });
    }
  }, 60_000);

  it('names the line of a mistake among 20 000 hosts', async () => {
    const { file } = inventory('typo.yaml');
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replaceAll('    via: [bastion-17]\n', '    via: [bastoin-17]\n'),
    );
    const r = await run(['-f', file, 'validate'], { cwd: dir, env: ENV });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^moshctl: \d+ problems:\n<dir>\/typo\.yaml:\d+:11: host "[a-z]+-\d+": via names unknown host "bastoin-17"\n {2}hint: did you mean "bastion-17"\?\n/,
    );
  }, 30_000);
});

describe('the limits, raised for it', () => {
  it('refuse a file over 32 MiB', async () => {
    const file = join(dir, 'huge.yaml');
    writeFileSync(file, `version: 1\n# ${'x'.repeat(LIMITS.bytes)}\n`);
    const r = await run(['-f', file, 'validate'], { cwd: dir, env: ENV });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `moshctl: <dir>/huge.yaml: the file is larger than 32 MiB, too large for a moshproxy.yaml\n  hint: check that this is the config file, saved as UTF-8 text\n`,
    );
  });

  it('refuse a billion laughs, in a small file and after 20 000 hosts', async () => {
    // l9 repeats l8 ten times, which repeats l7 ten times, ... down to ten x: 10^10 values.
    const laughs = Array.from(
      { length: 10 },
      (_, i) =>
        `l${i}: &l${i} [${Array(10)
          .fill(i === 0 ? 'x' : `*l${i - 1}`)
          .join(', ')}]`,
    );
    const small = join(dir, 'laughs.yaml');
    writeFileSync(small, `version: 1\nhosts: {a: {address: x}}\n${laughs.join('\n')}\n`);
    const r = await run(['-f', small, 'validate'], { cwd: dir, env: ENV });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('the aliases in this file expand to too much data');

    // A big file is read as plain YAML, which has no aliases at all.
    const { file } = inventory('big-laughs.yaml');
    writeFileSync(
      file,
      `${laughs.map((l) => `  ${l.replace(': ', ': {address: x, via: ')}}`).join('\n')}\n`,
      {
        flag: 'a',
      },
    );
    const big = await run(['-f', file, 'validate'], { cwd: dir, env: ENV });
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(
      /^moshctl: <dir>\/big-laughs\.yaml:\d+:\d+: an anchor \(&\): a file larger than 256 KiB must be plain YAML\n/,
    );
  }, 30_000);
});

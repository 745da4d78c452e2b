// mosh-client in the foreground (src/execute/client.ts): what it is given,
// and how its end is reported. Stand-in programs (sh scripts) play mosh-client.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startMoshClient } from '../../src/execute/client.js';
import { EnvError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'moshctl-client-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY = 'AAAAAAAAAAAAAAAAAAAAAA';

function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

describe('startMoshClient', () => {
  it('runs the program with the address and port, the key and its variables in the environment, and says its exit code', async () => {
    const out = join(dir, 'seen');
    const path = script(
      'says',
      `printf '%s|%s|%s|%s' "$1" "$2" "$MOSH_KEY" "$MOSH_PREDICTION_DISPLAY" > "$OUT"; exit 3`,
    );
    process.env.OUT = out;
    try {
      const c = await startMoshClient(
        { path, env: { MOSH_PREDICTION_DISPLAY: 'never' } },
        '192.0.2.1',
        61001,
        KEY,
      );
      expect(await c.exited).toBe(3);
    } finally {
      delete process.env.OUT;
    }
    expect(readFileSync(out, 'utf8')).toBe(`192.0.2.1|61001|${KEY}|never`);
  });

  it('says 128 + the signal when it is killed, by kill() or otherwise', async () => {
    const waits = script('waits', 'exec sleep 30');
    const c = await startMoshClient({ path: waits, env: {} }, '192.0.2.1', 61001, KEY);
    c.kill('SIGTERM');
    expect(await c.exited).toBe(128 + 15);
    const dies = await startMoshClient(
      { path: script('dies', 'kill -HUP $$'), env: {} },
      '192.0.2.1',
      1,
      KEY,
    );
    expect(await dies.exited).toBe(128 + 1);
  });

  it('fails with what to do when the program cannot run, never showing the key', async () => {
    const missing = join(dir, 'nope', 'mosh-client');
    const c = await startMoshClient({ path: missing, env: {} }, '192.0.2.1', 61001, KEY);
    const e: unknown = await c.exited.catch((x: unknown) => x);
    expect(e).toBeInstanceOf(EnvError);
    expect((e as EnvError).message).toMatch(new RegExp(`^cannot run mosh-client \\(${missing}\\): .*ENOENT`));
    expect((e as EnvError).message).not.toContain(KEY);
    expect((e as EnvError).hint).toMatch(/mosh\.client/);
  });
});

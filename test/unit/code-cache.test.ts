// bin/code-cache.js, the launcher's loader with V8's code cache kept between
// runs, on a two-file bundle of its own: each run is a new node process, as
// each moshctl command is.
import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempTree } from './helpers.js';

const loader = resolve(import.meta.dirname, '../../bin/code-cache.js');

/** A bundle whose main.cjs prints what it and ./part.cjs say. */
function bundle(word = 'alpha'): string {
  return tempTree({
    'pkg/dist/bundle/main.cjs': `const part = require('./part.cjs');\nconsole.log(part.say() + ' ${word}');\n`,
    'pkg/dist/bundle/part.cjs': `exports.say = () => 'part says ' + require('node:path').basename('/x/ok');\n`,
  });
}

function runBundle(dir: string, cacheHome: string): { code: number | null; out: string } {
  const script = `require(${JSON.stringify(loader)}).bundleLoader(process.argv[1])(process.argv[1] + '/main.cjs')`;
  const r = spawnSync(process.execPath, ['-e', script, join(dir, 'pkg/dist/bundle')], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', XDG_CACHE_HOME: cacheHome },
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** The cache files under `home`, path → [size, mtime]. */
function caches(home: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(p.slice(home.length), [statSync(p).size, statSync(p).mtimeMs]);
    }
  };
  walk(home);
  return out;
}

describe('the code cache of bin/code-cache.js', () => {
  it('is made at the first run, for every file, in a folder of the user only', () => {
    const dir = bundle();
    const home = join(dir, 'cache');
    expect(runBundle(dir, home)).toEqual({ code: 0, out: 'part says ok alpha\n' });
    const files = [...caches(home).keys()];
    expect(files.map((f) => f.split('/').pop()).sort()).toEqual(['main.cjs.cache', 'part.cjs.cache']);
    const file = join(home, files[0] ?? '');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, '..')).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, 'moshctl')).mode & 0o777).toBe(0o700);
  });

  it('is used as it is by the next runs (V8 takes it: nothing is written again)', () => {
    const dir = bundle();
    const home = join(dir, 'cache');
    runBundle(dir, home);
    const first = caches(home);
    expect(runBundle(dir, home)).toEqual({ code: 0, out: 'part says ok alpha\n' });
    expect(runBundle(dir, home)).toEqual({ code: 0, out: 'part says ok alpha\n' });
    expect(caches(home)).toEqual(first);
  });

  it('is not used for a file changed to a source of the same length (V8 would take it)', () => {
    const dir = bundle('alpha');
    const home = join(dir, 'cache');
    runBundle(dir, home);
    const main = join(dir, 'pkg/dist/bundle/main.cjs');
    writeFileSync(main, readFileSync(main, 'utf8').replace('alpha', 'omega'));
    expect(runBundle(dir, home)).toEqual({ code: 0, out: 'part says ok omega\n' });
    expect(runBundle(dir, home)).toEqual({ code: 0, out: 'part says ok omega\n' });
  });

  it('costs nothing but itself when it cannot be read or written', () => {
    const dir = bundle();
    const home = join(dir, 'cache');
    runBundle(dir, home);
    for (const f of caches(home).keys()) writeFileSync(join(home, f), 'moshctl code cache 1\nnonsense');
    expect(runBundle(dir, home)).toEqual({ code: 0, out: 'part says ok alpha\n' });
    // Made anew over the broken ones.
    expect([...caches(home).values()].every(([size]) => size > 100)).toBe(true);

    const readOnly = join(dir, 'read-only');
    writeFileSync(readOnly, ''); // a file where the cache folder would be: nothing can be made there
    expect(runBundle(dir, readOnly)).toEqual({ code: 0, out: 'part says ok alpha\n' });
    chmodSync(readOnly, 0o644);
    expect(runBundle(dir, 'relative/path')).toEqual({ code: 0, out: 'part says ok alpha\n' });
  });
});

// src/ reads top-down as the data flows (config → plan → execute → relay/remote
// → state): no module imports one that imports it back, and no folder of src/
// imports a folder that imports it back. Imports are read from the source text
// (static, `import type` and dynamic `import()` alike: a type-only cycle still
// makes two files that cannot be read one before the other).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative imports of each file under src/, as paths relative to src/. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of files(SRC)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((m) =>
      relative(SRC, resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
    );
    g.set(relative(SRC, file), [...new Set(targets)]);
  }
  return g;
}

/** Strongly connected components with more than one member (Tarjan). */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of g.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of g.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const folder = (path: string): string => (path.includes('/') ? path.split('/')[0]! : '.');

describe('imports in src/', () => {
  const g = graph();

  it('reads some imports at all (the parser works)', () => {
    expect(g.get('cli/main.ts')).toContain('cli/args.ts');
    expect(g.size).toBeGreaterThan(50);
  });

  it('has no cycle between modules', () => {
    expect(cycles(g)).toEqual([]);
  });

  it('has no cycle between the folders of src/', () => {
    const folders = new Map<string, string[]>();
    for (const [from, tos] of g) {
      const f = folder(from);
      const next = tos.map(folder).filter((t) => t !== f);
      folders.set(f, [...new Set([...(folders.get(f) ?? []), ...next])]);
    }
    expect(cycles(folders)).toEqual([]);
  });

  // What every command line loads before its command (moshctl.cjs in the bundle, the whole of
  // `moshctl --version`): static imports only, as import() and `import type` load nothing then.
  it('starts the CLI without any package and without the Node modules that cost to load', () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const todo = ['cli/main.ts'];
    for (let file = todo.pop(); file; file = todo.pop()) {
      if (seen.has(file)) continue;
      seen.add(file);
      const text = readFileSync(join(SRC, file), 'utf8');
      for (const m of text.matchAll(/^(?:import|export)\s+(?!type\s)[^;]*?\bfrom\s+'([^']+)'/gm)) {
        const target = m[1]!;
        if (target.startsWith('.'))
          todo.push(relative(SRC, resolve(dirname(join(SRC, file)), target.replace(/\.js$/, '.ts'))));
        else packages.add(target);
      }
    }
    expect(seen.size).toBeGreaterThan(5);
    // node:net (and node:tty, node:child_process, which load it) alone adds ~4 % to --version.
    const light = ['node:fs', 'node:module', 'node:path', 'node:url', 'node:util'];
    expect([...packages].filter((p) => !light.includes(p)).sort()).toEqual([]);
  });
});

// The plain YAML reader against the full parser: on every text it reads, it
// must give what source.ts's parseSource gives (data with its key order,
// origins in order, problems), so a file reads the same whichever reader took
// it. Random files as in config-property.test.ts (new seed each run, shown in
// the test name; MOSHCTL_FUZZ_SEED=N replays, MOSHCTL_FUZZ_SCALE=N runs more).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { stringify, type ToStringOptions } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { readPlainYaml } from '../../src/config/plain-yaml.js';
import { parseSource, type Source } from '../../src/config/source.js';

const seed = Number(process.env.MOSHCTL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const scale = Number(process.env.MOSHCTL_FUZZ_SCALE ?? 1);
const ENV = { USER: 'tester', HOME: '/home/tester', PORT: '2222', EMPTY: '' };
const root = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'moshctl-plain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Data as nested [key, value] lists, so that key order and own `__proto__` keys count. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === 'object' && v !== null) return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  return v;
}

function comparable(s: Source): unknown {
  return { data: shape(s.data), origins: [...s.origins], problems: s.problems };
}

/** Whether the plain reader read `text`; throws when it read it differently from the full parser. */
function sameAsFull(text: string): boolean {
  const plain = readPlainYaml('f.yaml', text, ENV);
  if (!plain.source) return false;
  const full = parseSource('f.yaml', text, ENV);
  // Looked up one by one first: iterating makes the plain reader's origins a Map.
  const lookups = [...[...full.origins].map(([p]) => p), '/nope', '/hosts/nope/address', '/0', '/version/0'];
  expect(lookups.map((p) => plain.source.origins.get(p))).toEqual(lookups.map((p) => full.origins.get(p)));
  expect(comparable(plain.source)).toEqual(comparable(full));
  return true;
}

const validFiles = [
  'moshproxy.yaml',
  ...readdirSync(join(root, 'examples'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join('examples', f)),
];

describe('the plain YAML reader', () => {
  it.each(validFiles)('reads %s as the full parser does', (f) => {
    expect(sameAsFull(readFileSync(join(root, f), 'utf8'))).toBe(true);
  });

  it.each([[[]], [['--full']], [['--flow']], [['--full', '--flow']]])(
    'reads a generated inventory (%j) as the full parser does',
    (options) => {
      const out = join(dir, 'inventory.yaml');
      execFileSync(process.execPath, [
        join(root, 'scripts/gen-inventory.mjs'),
        '--hosts',
        '300',
        '--bastions',
        '30',
        ...options,
        '--out',
        out,
      ]);
      expect(sameAsFull(readFileSync(out, 'utf8'))).toBe(true);
    },
  );

  it.each([
    ['an anchor', 'a: &x 1\n', 1, 4],
    ['an alias', 'a: 1\nb: *a\n', 2, 4],
    ['a tag', 'a: !!str 1\n', 1, 4],
    ['a block scalar', 'a: |\n  x\n', 1, 4],
    ['a value over two lines', 'a: b\n  c\n', 2, 3],
    ['an empty value', 'a:\nb: 1\n', 1, 1],
    ['a tab', 'a:\n\tb: 1\n', 2, 1],
    ['a second document', 'a: 1\n---\nb: 2\n', 2, 1],
    ['a list over two lines', 'a: [b,\n  c]\n', 1, 4],
  ])('stops at %s, and says where', (_, text, line, column) => {
    const plain = readPlainYaml('f.yaml', text, ENV);
    expect(plain.stop).toBeDefined();
    const before = text.slice(0, plain.stop?.offset);
    expect([before.split('\n').length, before.length - before.lastIndexOf('\n')]).toEqual([line, column]);
    expect(plain.stop?.message).toMatch(/must be plain YAML$/);
  });
});

// ---------------------------------------------------------------------------
// Random files: most are plain, and each one the plain reader takes must read the same.

// prettier-ignore
const KEYS = ['version', 'hosts', 'a', 'b', 'box-1', 'x.y', '22', 'true', '"q"', "'s'", 'a b', 'é'];
// prettier-ignore
const ODD_KEYS = [
  'a:b', 'a#b', 'a #b', '007', '-1', 'null', '~', '__proto__', 'constructor', '<<', '"a b"', "'it''s'", '-x',
  '?x', ':x', '${USER}', '[a]', '{a: 1}', '"a\\"b"', '&k a', '*k', '!t a', 'x'.repeat(1100),
];
// prettier-ignore
const SCALARS = [
  '1', '22', '-1', '0x1F', '1.5', 'true', 'x', 'a b', 'a#c', 'a:b', '10.0.0.1', 'fe80::1', '60000-61000',
  '~/.ssh/id', '${USER}', '"x"', "'y'", 'é', '😀', 'null', '~',
];
// prettier-ignore
const ODD_SCALARS = [
  '+1', '007', '0o17', '0b1', '.5', '1e3', '1e400', '.inf', '-.inf', '.nan', 'Null', 'False', 'yes', 'a  b',
  'a #c', 'a: b', 'a:', 'x]', 'x}', 'x,y', '::1', '${NOPE:?boom}', '${PORT:-22}', '$$', '99999999999999999999',
  '"a b"', '""', "''", "'it''s'", '"a\\"b"', '"${USER}"', "'$$'", '-', '- x', '-x', '?', '? x', '&a x', '*a',
  '!x y', '|', '>', '%x', '@x', '`x`', '"x', "'x", 'a "b" c', 'a\tb', '"a\tb"',
  'a\u2028b', 'a\u0085b', '\ufeffx', 'a\u00a0b',
];
const key = fc.oneof({ arbitrary: fc.constantFrom(...KEYS), weight: 8 }, fc.constantFrom(...ODD_KEYS));
const scalar = fc.oneof(
  { arbitrary: fc.constantFrom(...SCALARS), weight: 8 },
  fc.constantFrom(...ODD_SCALARS),
);
const flowItem: fc.Arbitrary<string> = fc.letrec<{ item: string }>((tie) => ({
  item: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: scalar, weight: 4 },
    fc.array(tie('item'), { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
    fc
      .array(fc.tuple(key, tie('item')), { maxLength: 3 })
      .map((ps) => `{${ps.map(([k, v]) => `${k}: ${v}`).join(', ')}}`),
    fc.constantFrom('[]', '{}', '[a,b]', '[ a ]', '{a: 1,b: 2}', '[a, ]', '[a: b]', '{a}', '{"a":1}'),
  ),
})).item;
const gap = fc.constantFrom('', '', '', '', '', '', '  # c', ' #c', '#c', '   ', '\r', '\t');
const filler = fc.constantFrom(
  '',
  '',
  '',
  '',
  '',
  '# comment',
  '  # indented comment',
  '   ',
  '\t# tab',
  '---',
  '...',
);

/** Block-style YAML, built line by line with an indentation for each level. */
const block: fc.Arbitrary<string[]> = fc.letrec<{ map: string[]; seq: string[] }>((tie) => {
  const value = fc.oneof(
    { arbitrary: fc.tuple(scalar, gap).map(([v, g]) => [` ${v}${g}`]), weight: 6 },
    { arbitrary: fc.tuple(flowItem, gap).map(([v, g]) => [` ${v}${g}`]), weight: 2 },
    {
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 3 }), tie('map')).map(([n, l]) => ['', ...indent(l, n)]),
      weight: 2,
    },
    {
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 2 }), tie('seq')).map(([n, l]) => ['', ...indent(l, n)]),
      weight: 1,
    },
    { arbitrary: fc.constant(['']), weight: 1 },
  );
  const pairs = fc.array(
    fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(':', ':', ':', ' :', '::'), value, filler),
    {
      minLength: 1,
      maxLength: 4,
    },
  );
  return {
    map: pairs.map((ps) =>
      ps.flatMap(([k, colon, [first, ...rest], f]) => [`${k}${colon}${first}`, ...rest, ...(f ? [f] : [])]),
    ),
    seq: fc
      .array(fc.oneof({ arbitrary: scalar, weight: 3 }, flowItem), { minLength: 1, maxLength: 4 })
      .map((xs) => xs.map((x) => `- ${x}`)),
  };
}).map;
const indent = (lines: string[], n: number): string[] => lines.map((l) => (l ? ' '.repeat(n) + l : l));

/** Configs written by yaml's own stringify, in block and in flow style. */
const stringified = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...KEYS.slice(0, 8)), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
    fc.constantFrom<ToStringOptions>(
      {},
      { indentSeq: false },
      { collectionStyle: 'flow' },
      { defaultStringType: 'QUOTE_DOUBLE' },
      { defaultStringType: 'QUOTE_SINGLE', defaultKeyType: 'PLAIN' },
      { lineWidth: 0, indent: 4 },
    ),
  )
  .map(([data, options]) => stringify(data, options));

/** Valid files with a few edits: a token put in, a stretch taken out, a line indented or repeated. */
const place = fc.noBias(fc.integer({ min: 0, max: 2 ** 20 - 1 })).map((n) => n / 2 ** 20);
const edit = fc.oneof(
  fc
    .tuple(
      place,
      fc.oneof(key, scalar, fc.constantFrom(' ', '  ', '\n', ': ', '- ', '#', '[', '{', ',', '"', "'")),
    )
    .map(
      ([f, t]) =>
        (s: string) =>
          s.slice(0, f * s.length) + t + s.slice(f * s.length),
    ),
  fc.tuple(place, fc.nat({ max: 12 })).map(
    ([f, n]) =>
      (s: string) =>
        s.slice(0, f * s.length) + s.slice(f * s.length + n),
  ),
  fc.tuple(place, fc.constantFrom('', ' ', '  ', '- ')).map(([f, indent]) => (s: string) => {
    const lines = s.split('\n');
    const i = Math.floor(f * lines.length);
    lines.splice(i, 1, `${indent}${lines[i] ?? ''}`, ...(indent === '' ? [lines[i] ?? ''] : []));
    return lines.join('\n');
  }),
);
const mutated = fc
  .tuple(
    fc.constantFrom(...validFiles.map((f) => readFileSync(join(root, f), 'utf8'))),
    fc.array(edit, { minLength: 1, maxLength: 4 }),
  )
  .map(([text, edits]) => edits.reduce((acc, e) => e(acc), text));

/** Each with how many runs, and the share of them the plain reader should read. */
const properties: [string, fc.Arbitrary<string>, number, number][] = [
  ['block-style files', block.map((l) => `${l.join('\n')}\n`), 600, 0.1],
  ['files written by yaml.stringify', stringified, 300, 0.2],
  ['edits of moshproxy.yaml and examples/', mutated, 400, 0.2],
  [
    'random pieces',
    fc
      .array(
        fc.oneof(key, scalar, fc.constantFrom(': ', ': ', '\n', '\n', '  ', '- ', ', ', '[', ']', '{', '}')),
        {
          maxLength: 40,
        },
      )
      .map((t) => t.join('')),
    1000,
    0.02,
  ],
];

describe(`the plain YAML reader on random files (seed ${seed})`, () => {
  it.each(properties)(
    '%s: read as the full parser reads them, or not at all',
    (_, input, numRuns, share) => {
      let read = 0;
      fc.assert(
        fc.property(input, (text) => {
          if (sameAsFull(text)) read++;
        }),
        { seed, numRuns: numRuns * scale },
      );
      // Most of them are plain: the comparison is not empty.
      expect(read).toBeGreaterThan(numRuns * scale * share);
    },
    60_000 * scale,
  );
});

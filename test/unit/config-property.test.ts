// The config loader on hostile input: random text and bytes, YAML made to
// exhaust memory or the stack, and mutations of the real moshproxy.yaml and
// examples/. Whatever the input, `moshctl validate` and `moshctl config` end
// with exit 0, or exit 2 and a message, in bounded time: never a stack trace,
// an "unexpected error", a crash or a hang.
//
// The random cases use a new seed each run, shown in the test names;
// MOSHCTL_FUZZ_SEED=N replays a run (fast-check also prints the seed and the
// path of a failing case), MOSHCTL_FUZZ_SCALE=N runs N times as many cases.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/config/limits.js';
import { run, type Run } from './helpers.js';

const seed = Number(process.env.MOSHCTL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const scale = Number(process.env.MOSHCTL_FUZZ_SCALE ?? 1);
/**
 * Per case, both commands; the slowest cases here (a file of 32 MiB, or of a
 * million values, or 20 000 hosts with a mistake each) take well under a second.
 */
// A bound on hanging, not a speed test: the case at the limit of a million values took 2.1 s beside the e2e suite.
const CASE_MS = 5_000;
const ENV = { USER: 'tester', HOME: '/home/tester', PORT: '2222', EMPTY: '' };

const root = resolve(import.meta.dirname, '../..');
const validFiles = [
  'moshproxy.yaml',
  ...readdirSync(join(root, 'examples'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join('examples', f)),
].map((f) => readFileSync(join(root, f)));

// One folder for every case: rewriting a file is cheap, making folders is not.
const dir = mkdtempSync(join(tmpdir(), 'moshctl-fuzz-'));
const file = join(dir, 'moshproxy.yaml');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a person would have to report as a bug, or undefined when the CLI handled the input. */
function mishandled(r: Run, command: string): string | undefined {
  if (r.code !== 0 && r.code !== 2) return `exit ${r.code}`;
  if (/^ {2,}at /m.test(r.stderr)) return 'a stack trace';
  if (r.stderr.includes('unexpected error')) return 'an unexpected error';
  if (r.code === 2 && !/^moshctl: \S/.test(r.stderr)) return 'exit 2 without a "moshctl: " message';
  if (r.code === 2 && r.stdout !== '') return 'output on stdout with exit 2';
  if (r.code === 0 && command === 'validate' && r.stdout !== 'ok\n') return 'validate exit 0 without "ok"';
  return undefined;
}

/** Runs validate and config on `content`; throws (with what went wrong) unless both handled it in time. */
async function expectHandled(content: string | Uint8Array, files: string[] = []): Promise<Run> {
  writeFileSync(file, content);
  let last: Run | undefined;
  for (const command of [['validate'], ['config', '--json']]) {
    const argv = [...files.flatMap((f) => ['-f', f]), ...command];
    const start = performance.now();
    const r = await run(argv, { cwd: dir, env: ENV });
    const ms = performance.now() - start;
    const wrong = mishandled(r, command[0] ?? '') ?? (ms > CASE_MS ? `${Math.round(ms)} ms` : undefined);
    if (wrong) {
      throw new Error(
        `moshctl ${argv.join(' ')} gave ${wrong} (exit ${r.code}, ${Math.round(ms)} ms):\n${r.stderr.slice(0, 2000)}`,
      );
    }
    last = r;
  }
  return last as Run;
}

// ---------------------------------------------------------------------------
// Inputs built to hurt, each once.

const laughs = (levels: number, width: number): string => {
  const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`];
  for (let i = 1; i < levels; i++)
    lines.push(
      `l${i}: &l${i} [${Array(width)
        .fill(`*l${i - 1}`)
        .join(', ')}]`,
    );
  return `version: 1\nhosts: {a: {address: x}}\n${lines.join('\n')}\n`;
};
const nested = (open: string, close: string, n: number): string => open.repeat(n) + close.repeat(n);
const lines = (n: number, f: (i: number) => string): string =>
  Array.from({ length: n }, (_, i) => f(i)).join('\n');
const big = LIMITS.bytes;
/** A file the full YAML parser reads; past it, plain YAML only. */
const yamlBig = LIMITS.yamlBytes;
const hosts = (n: number, f: (i: number) => string): string => `version: 1\nhosts:\n${lines(n, f)}\n`;
const inventory = (...options: string[]): string => {
  const out = join(dir, 'inventory.yaml');
  execFileSync(process.execPath, [join(root, 'scripts/gen-inventory.mjs'), ...options, '--out', out]);
  return readFileSync(out, 'utf8');
};

const attacks: [string, string | Uint8Array, string?][] = [
  ['billion laughs', laughs(10, 10), 'expand to too much data'],
  ['billion laughs, narrow and deep', laughs(40, 2), 'expand to too much data'],
  [
    'aliases nesting past the depth limit',
    `${lines(20, (i) => `a${i}: &a${i} [[[[${i ? `*a${i - 1}` : 'x'}]]]]`)}\n`,
  ],
  ['an alias inside its own anchor', 'a: &a [x, *a]\n', 'repeats a value that contains it'],
  ['an alias before its anchor', 'a: *b\nb: &b 1\n', 'has no anchor &b before it'],
  ['10 000 [', '['.repeat(10_000), 'nest more than'],
  ['10 000 {', '{'.repeat(10_000), 'nest more than'],
  ['10 000 [ closed', nested('[', ']', 10_000), 'nest more than'],
  ['10 000 { closed', nested('{a: ', '}', 10_000), 'nest more than'],
  ['deep block maps', lines(700, (i) => `${' '.repeat(i)}a:`), 'nest more than'],
  ['deep block sequences', lines(700, (i) => `${' '.repeat(i)}-`), 'nest more than'],
  ['10 000 compact sequences', `${'- '.repeat(10_000)}x`, 'nest more than'],
  ['10 000 explicit keys', `${'? '.repeat(10_000)}x`, 'nest more than'],
  ['parse, then overflow, twice', `${nested('[', ']', 5_000)}\n`],
  ['more values than allowed', `version: 1\nx:\n${lines(LIMITS.values + 1, () => '- 1')}\n`, 'more than'],
  ['4 900 hosts without an address', `version: 1\nhosts:\n${lines(4_900, (i) => `  h${i}: {}`)}\n`],
  ['an inventory of 20 000 hosts (scripts/gen-inventory.mjs)', inventory()],
  ['the same, every field set on every host', inventory('--full')],
  ['20 000 hosts without an address', hosts(20_000, (i) => `  h${i}: {}`), 'needs "address"'],
  [
    '20 000 hosts through hosts not declared',
    hosts(20_000, (i) => `  h${i}: {address: a, via: [x${i}]}`),
    'unknown host',
  ],
  ['a chain of 20 000 hosts', hosts(20_000, (i) => `  h${i}: {address: a${i ? `, via: [h${i - 1}]` : ''}}`)],
  [
    'a loop of 20 000 hosts',
    hosts(20_000, (i) => `  h${i}: {address: a, via: [h${(i + 1) % 20_000}]}`),
    'cycle',
  ],
  [
    'an anchor in a file the full YAML parser does not read',
    `${hosts(yamlBig / 20, (i) => `  h${i}: {address: a}`)}x: &a 1\n`,
    'must be plain YAML',
  ],
  ['an anchor in a file just under that', `${hosts(yamlBig / 26, (i) => `  h${i}: {address: a}`)}x: &a 1\n`],
  ['a file over the size limit', `version: 1\nx: "${'x'.repeat(big)}"\n`, 'larger than'],
  ['a string just under it', `version: 1\nhosts: {a: {address: "${'x'.repeat(big - 100)}"}}\n`],
  ['a key just under it', `version: 1\n${'k'.repeat(big - 100)}: 1\n`],
  ['a host name just under it', `version: 1\nhosts:\n  ${'h'.repeat(big - 100)}: {address: x}\n`],
  ['a lone $ a hundred thousand times', `version: 1\nhosts: {a: {address: "${'$ '.repeat(100_000)}"}}\n`],
  ['30 000 unset variables', `version: 1\nhosts: {a: {address: "${'${X:?}'.repeat(30_000)}"}}\n`],
  ['1e400', 'version: 1e400\nhosts: {a: {address: x, port: 1e400}}\n', 'too large'],
  ['99999999999999999999', 'version: 1\nhosts: {a: {address: x, port: 99999999999999999999}}\n', 'too large'],
  ['.inf and .nan', 'version: 1\nhosts: {a: {address: x, port: .inf, connect_timeout: .nan}}\n'],
  [
    'an interpolated huge number',
    'version: 1\nhosts:\n  a:\n    address: x\n    port: ${NOPE:-99999999999999999999}\n',
    'too large',
  ],
  ['4 900 duplicate keys', `version: 1\n${lines(4_900, () => 'hosts: {}')}\n`, 'remove one of the two keys'],
  ['tabs for indentation', 'version: 1\nhosts:\n\ta:\n\t\taddress: x\n'],
  ['a byte order mark', '\uFEFFversion: 1\nhosts: {a: {address: x}}\n'],
  ['an empty file', '', 'the file is empty'],
  ['only a comment', '# nothing here\n', 'the file is empty'],
  ['only whitespace', ' \n\t\n  \n'],
  ['a NUL byte', 'version: 1\0\nhosts: {}\n', 'U+0000'],
  ['binary', Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) % 256)],
  ['invalid UTF-8', Uint8Array.from([0x76, 0x3a, 0x20, 0xc3, 0x28, 0x0a]), 'not UTF-8'],
  ['a lone surrogate in UTF-8', Uint8Array.from([0x61, 0x3a, 0x20, 0xed, 0xa0, 0x80]), 'not UTF-8'],
  ['an overlong NUL', Uint8Array.from([0x61, 0x3a, 0x20, 0xc0, 0x80]), 'not UTF-8'],
  ['UTF-16', Buffer.from('\uFEFFversion: 1\n', 'utf16le')],
  ['two documents', 'version: 1\nhosts: {a: {address: x}}\n---\nversion: 1\n', 'a second YAML document'],
  [
    '%YAML 1.1 and its tags',
    '%YAML 1.1\n---\nversion: 1\nhosts: !!omap [a: {address: x}]\n',
    'not supported',
  ],
  ['unknown tags', 'version: !!binary aGVsbG8=\nhosts: !!set {a}\nx: !foo 1\n', 'not supported'],
  ['a merge key', 'version: 1\nx: &x {address: b}\nhosts: {a: {<<: *x}}\n'],
  ['keys that are lists, maps and aliases', 'version: 1\n[a]: 1\n{b: 1}: 2\n? - c\n: 3\nx: &k y\n*k : 4\n'],
  [
    '__proto__ and friends',
    'version: 1\n__proto__: {x: 1}\nhosts: {constructor: {address: x}, __proto__: {}}\n',
  ],
  ['a CR-only file', 'version: 1\rhosts:\r  a: {address: x}\r'],
  ['a scalar document', 'just text'],
  ['a list document', '- version: 1\n'],
  ['an unterminated quote', 'version: 1\nhosts: {a: {address: "x\n'],
  ['a block scalar for every value', 'version: 1\nhosts:\n  a:\n    address: |\n      x\n'],
];

describe('the config loader on inputs built to hurt', () => {
  it.each(attacks)(
    '%s: exit 0 or 2 with a message',
    async (_, content, says) => {
      const r = await expectHandled(content);
      if (says) expect(r.stderr).toContain(says);
    },
    20_000,
  );

  it('an endless file given with -f (/dev/zero) is refused after a bounded read', async () => {
    const r = await expectHandled('', ['/dev/zero']);
    expect(r.stderr).toContain('/dev/zero: the file is larger than 32 MiB');
  });

  it('a problem in either of two merged files, where the second is broken', async () => {
    const second = join(dir, 'second.yaml');
    writeFileSync(second, nested('[', ']', 3_000));
    const r = await expectHandled('version: 1\nhosts: {a: {address: x}}\n', [file, second]);
    expect(r.stderr).toContain('second.yaml:1:65: lists and maps nest more than 64 levels');
  });

  it('a long list of problems is cut after the first 50', async () => {
    const r = await expectHandled(`version: 1\nhosts:\n${lines(300, (i) => `  h${i}: {}`)}\n`);
    expect(r.stderr).toMatch(/^moshctl: 300 problems:\n/);
    expect(r.stderr).toContain('\n... and 250 more\n');
  });
});

// ---------------------------------------------------------------------------
// Random inputs.

/** Pieces YAML gives meaning to, and values the loader must survive. */
// prettier-ignore
const TOKENS = [
  '\n', '\n', '\n', ' ', ' ', '  ', '    ', '\t', '\r\n', '\r', '- ', '-', ': ', ':', '? ', '?', '[', ']',
  '{', '}', ', ', ',', '&a ', '&b ', '*a', '*b', '*a ', '!!str ', '!!binary ', '!!map ', '!foo ', '! ',
  '%YAML 1.1\n', '%TAG ! tag:x,2000:\n', '---\n', '--- ', '...\n', '# c\n', ' #', '"', "'", '"x"', "'y'",
  '|\n', '>-\n', '\\', '\\u0000', 'version', 'version: 1\n', 'hosts', 'hosts:\n', 'via', 'address', 'port',
  'relay', 'ports', 'mosh', 'defaults', 'user', 'identity_file', 'server_ports', 'ssh_client', 'x',
  'bastion', 'box', '1', '22', '-1', '0x1F', '0o17', '1.5', '1e400', '-1e400', '99999999999999999999',
  '.inf', '.nan', '~', 'null', 'true', 'yes', '60000-61000', '70000-1', '${', '}', '$', '$$', '${USER}',
  '${X:?boom}', '${PORT:-22}', '$(reboot)', '`id`', ';', '__proto__', 'constructor', '<<', '\uFEFF',
  '\u0085', '\u2028', 'é', '😀', '\uD800',
];
/** Refused before parsing: kept out of TOKENS, or nearly every random text would stop at one. */
const CONTROL = ['\0', '\x7f', '\x1b', '\x9b'];
const yamlish = fc.array(fc.constantFrom(...TOKENS), { maxLength: 120 }).map((t) => t.join(''));

/** Edits of a valid file: what a slip of the keyboard, a bad merge or a truncated copy does. */
type Edit = (b: Buffer) => Buffer;
/** A place in the file, as a fraction of its length, uniformly: fc.nat() and fc.double() favour the start. */
const place = fc.noBias(fc.integer({ min: 0, max: 2 ** 20 - 1 })).map((n) => n / 2 ** 20);
const at = (b: Buffer, f: number): number => Math.floor(f * (b.length + 1));
const onLine =
  (f: number, edit: (l: string[], i: number) => void): Edit =>
  (b) => {
    const l = b.toString('latin1').split('\n');
    edit(l, Math.floor(f * l.length));
    return Buffer.from(l.join('\n'), 'latin1');
  };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.tuple(place, fc.integer({ min: 0, max: 255 })).map(([f, byte]): Edit => (b) => {
    const c = Buffer.from(b);
    if (c.length > 0) c[Math.min(at(c, f), c.length - 1)] = byte;
    return c;
  }),
  fc.tuple(place, fc.nat({ max: 40 })).map(
    ([f, len]): Edit =>
      (b) =>
        Buffer.concat([b.subarray(0, at(b, f)), b.subarray(at(b, f) + len)]),
  ),
  fc.tuple(place, fc.constantFrom(...TOKENS, ...CONTROL)).map(
    ([f, token]): Edit =>
      (b) =>
        Buffer.concat([b.subarray(0, at(b, f)), Buffer.from(token), b.subarray(at(b, f))]),
  ),
  place.map(
    (f): Edit =>
      (b) =>
        b.subarray(0, at(b, f)),
  ),
  fc.tuple(place, place).map(([f, g]) =>
    onLine(f, (l, i) => {
      const j = Math.floor(g * l.length);
      [l[i], l[j]] = [l[j] ?? '', l[i] ?? ''];
    }),
  ),
  place.map((f) => onLine(f, (l, i) => l.splice(i, 0, l[i] ?? ''))),
  place.map((f) => onLine(f, (l, i) => l.splice(i, 1))),
  fc
    .tuple(place, fc.constantFrom('  ', ' ', '\t', '- ', '? '))
    .map(([f, indent]) => onLine(f, (l, i) => void (l[i] = indent + (l[i] ?? '')))),
  place.map((f) => onLine(f, (l, i) => void (l[i] = (l[i] ?? '').replace(/^\s+/, '')))),
);
const mutated = fc
  .tuple(fc.constantFrom(...validFiles), fc.array(edit, { minLength: 1, maxLength: 6 }))
  .map(([b, edits]) => edits.reduce<Buffer>((acc, e) => e(acc), b));

/**
 * Configs of the right shape, mostly with good values and now and then an odd
 * one, so that many pass the schema and reach the rules and resolve too.
 */
const odd = fc.oneof(
  fc.constantFrom(0, -1, 65536, 1.5, 1e20, '', 'a;b', '$(id)', '-oProxyCommand=x', '${X:?boom}', null, true),
  fc.constantFrom('70000-1', '20-10', 'lots', '~', '../x', 'nc', 'openssh', 'accept-new', '::1'),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);
const maybe = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ arbitrary: good, weight: 25 }, { arbitrary: odd, weight: 1 });
const name = fc.oneof(
  { arbitrary: fc.constantFrom('bastion', 'jump', 'box', 'web-1'), weight: 25 },
  { arbitrary: fc.constantFrom('x.y', '-bad', 'a b', '', '__proto__', '22', 'bastoin'), weight: 1 },
);
const ports = fc.constantFrom('60000-60100', '60001', '61000-61999', '${PORTS:-60000-60010}');
const timeout = fc.oneof(fc.integer({ min: 1, max: 604_800 }), fc.constant('${T:-60}'));
const relay = fc.record(
  { ports: maybe(ports), runtime: maybe(fc.constantFrom('auto', 'python3', 'perl', 'socat', 'nc')) },
  { requiredKeys: [] },
);
const mosh = fc.record(
  {
    server_ports: maybe(ports),
    network_timeout: maybe(timeout),
    signal_timeout: maybe(timeout),
    locale: maybe(fc.constantFrom('C.UTF-8', 'en_US.UTF-8')),
  },
  { requiredKeys: [] },
);
const hostFields = {
  port: maybe(fc.constantFrom(22, 2222, '${PORT}')),
  user: maybe(fc.constantFrom('alice', '${USER}', '${NOPE:-bob}')),
  identity_file: maybe(fc.constantFrom('~/.ssh/id_ed25519', '/etc/key', ['~/.ssh/a', 'k/b'])),
  known_hosts: maybe(fc.constantFrom('~/.ssh/known_hosts', ['/etc/ssh/ssh_known_hosts'])),
  relay: maybe(relay),
  ssh_client: maybe(fc.constantFrom('ssh2', 'openssh')),
  host_key_policy: maybe(fc.constantFrom('strict', 'accept-new')),
  connect_timeout: maybe(fc.integer({ min: 1, max: 120 })),
};
const host = fc.record(
  {
    address: maybe(
      fc.constantFrom('10.0.0.1', 'bastion.example.com', '::1', 'fe80::1', '192.0.2.5', '${ADDR:-h}'),
    ),
    // Mostly no via or one hop, so that chains are often sound.
    via: maybe(
      fc.oneof(
        { arbitrary: fc.constant([]), weight: 3 },
        { arbitrary: fc.array(name, { maxLength: 1 }), weight: 3 },
        { arbitrary: fc.array(name, { maxLength: 3 }), weight: 1 },
      ),
    ),
    mosh: maybe(mosh),
    ...hostFields,
  },
  { requiredKeys: ['address'] },
);
const shaped = fc
  .record(
    {
      version: maybe(fc.constant(1)),
      defaults: maybe(fc.record(hostFields, { requiredKeys: [] })),
      mosh: maybe(mosh),
      hosts: maybe(fc.dictionary(name, maybe(host), { minKeys: 1, maxKeys: 5 })),
    },
    { requiredKeys: ['version', 'hosts'] },
  )
  .map((config) => stringify(config));

const properties: [string, fc.Arbitrary<string | Uint8Array>, number][] = [
  ['random text', fc.string({ unit: 'binary', maxLength: 500 }), 150],
  ['random bytes', fc.uint8Array({ maxLength: 500 }), 100],
  ['random YAML pieces', yamlish, 300],
  ['mutations of moshproxy.yaml and examples/', mutated, 400],
  ['configs of the right shape with odd values', shaped, 250],
];

describe(`the config loader on random input (seed ${seed})`, () => {
  it.each(properties)(
    '%s: exit 0 or 2 with a message',
    async (_, input, numRuns) => {
      await fc.assert(
        fc.asyncProperty(input, async (content) => {
          await expectHandled(content);
        }),
        { seed, numRuns: numRuns * scale },
      );
    },
    60_000 * scale,
  );
});

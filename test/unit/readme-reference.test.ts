// The reference lives in docs/ and is checked against what it describes:
// every config field of schemas/moshproxy.schema.json in docs/config.md
// "Config reference", every command and option of src/cli/spec.ts in
// docs/commands.md "Command reference", every ExitCode of src/errors.ts in
// docs/commands.md "Exit codes", in both directions, so neither side can
// change without the other. The README and docs/ hang together: the README
// links to every page of docs/, and every relative link in them names a file
// that exists (and, for `page.md#anchor`, a heading of that page).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { commands, globalOptions, type OptionSpec } from '../../src/cli/spec.js';
import { ExitCode } from '../../src/errors.js';

const root = resolve(import.meta.dirname, '../..');

// --- Markdown, as far as the README and docs/ need it ------------------------

interface Heading {
  level: number;
  text: string;
  /** Index of its line. */
  line: number;
}

interface Doc {
  /** Relative to the repository root, for messages: `docs/config.md`. */
  path: string;
  lines: string[];
  headings: Heading[];
}

/** A markdown file of the repository, with its headings. */
function readDoc(path: string): Doc {
  const lines = readFileSync(resolve(root, path), 'utf8').split('\n');
  return { path, lines, headings: headingsOf(lines) };
}

/** Whether each line is inside a fenced code block (the fence lines count as inside). */
function fencedLines(lines: string[]): boolean[] {
  let fenced = false;
  return lines.map((l) => {
    const fence = /^\s*(```|~~~)/.test(l);
    const inside = fenced || fence;
    if (fence) fenced = !fenced;
    return inside;
  });
}

/** Headings outside fenced code blocks (a `# comment` in a sh block is none). */
function headingsOf(lines: string[]): Heading[] {
  const fenced = fencedLines(lines);
  return lines.flatMap((l, line) => {
    const m = fenced[line] ? null : /^(#{1,6})\s+(.*?)\s*$/.exec(l);
    return m ? [{ level: (m[1] ?? '').length, text: m[2] ?? '', line }] : [];
  });
}

interface Section {
  heading: Heading;
  body: string;
  /** The text before its first subsection (all of body when it has none). */
  preamble: string;
  /** Its direct subsections. */
  parts: Section[];
}

/** The section under the heading `title`, up to the next heading of the same or a higher level. */
function section(doc: Doc, title: string): Section | undefined {
  const i = doc.headings.findIndex((h) => h.text === title);
  return i < 0 ? undefined : sectionAt(doc, i);
}

function sectionAt(doc: Doc, i: number): Section {
  const heading = doc.headings[i] as Heading;
  const rest = doc.headings.slice(i + 1);
  const end = rest.findIndex((h) => h.level <= heading.level);
  const inside = end < 0 ? rest : rest.slice(0, end);
  const sub = Math.min(...inside.map((h) => h.level));
  const parts = inside.filter((h) => h.level === sub).map((h) => sectionAt(doc, doc.headings.indexOf(h)));
  const stop = end < 0 ? doc.lines.length : (rest[end] as Heading).line;
  const text = (to: number): string => doc.lines.slice(heading.line + 1, to).join('\n');
  const first = parts[0];
  return { heading, body: text(stop), preamble: first ? text(first.heading.line) : text(stop), parts };
}

/** Every `code` span. */
function codeSpans(text: string): string[] {
  return [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1] ?? '');
}

/** The body rows of every table, each as its cells (`\|` is a pipe inside a cell). */
function tableRows(text: string): string[][] {
  const rows: string[][] = [];
  let inTable = false;
  for (const l of text.split('\n')) {
    if (!l.trimStart().startsWith('|')) {
      inTable = false;
      continue;
    }
    const cells = l
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((c) => c.trim().replaceAll('\\|', '|'));
    // The first row of a table is its header; the second only dashes.
    if (!inTable) inTable = true;
    else if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
  }
  return rows;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replaceAll(' ', '-');
}

/** Every anchor of a page: a heading's anchor, with `-1`, `-2`... for its repeats, as GitHub numbers them. */
function anchorsOf(doc: Doc): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const h of doc.headings) {
    const a = anchor(h.text);
    const n = seen.get(a) ?? 0;
    seen.set(a, n + 1);
    out.add(n === 0 ? a : `${a}-${n}`);
  }
  return out;
}

/**
 * The target of every link outside code: inline `[text](target)` and
 * `![alt](target)`, with an optional "title", and reference definitions
 * `[label]: target`. Code spans are taken out first, so `a](b)` in code is no link.
 */
function linkTargets(doc: Doc): string[] {
  const fenced = fencedLines(doc.lines);
  const text = doc.lines
    .filter((_, i) => !fenced[i])
    .join('\n')
    .replace(/`[^`\n]*`/g, '');
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)];
  const defined = [...text.matchAll(/^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)];
  return [...inline, ...defined].map((m) => m[1] ?? '');
}

/** A link that leaves the repository (`https:`, `mailto:`, `//host`), which is not checked here. */
function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//');
}

function missingSection(doc: Doc, title: string): string {
  return `${doc.path} has no "${title}" heading`;
}

/** The README and every page of docs/, paths relative to the repository root. */
const docPages = readdirSync(resolve(root, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => `docs/${f}`);
const markdown = ['README.md', ...docPages];

/** Where the reference sections live. */
const configDoc = readDoc('docs/config.md');
const commandsDoc = readDoc('docs/commands.md');

// --- Config fields from the schema ------------------------------------------

interface SchemaNode {
  $ref?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  allOf?: SchemaNode[];
  enum?: unknown[];
  const?: unknown;
}

const schema = JSON.parse(
  readFileSync(resolve(root, 'schemas/moshproxy.schema.json'), 'utf8'),
) as SchemaNode & { definitions?: Record<string, SchemaNode> };

/** A node with its `$ref` followed (local `#/definitions/...` only); its own keywords win, as in draft 7 annotations. */
function deref(node: SchemaNode, seen: string[] = []): SchemaNode {
  if (!node.$ref) return node;
  const m = /^#\/definitions\/(.+)$/.exec(node.$ref);
  const target = m ? schema.definitions?.[m[1] ?? ''] : undefined;
  if (!target || seen.includes(node.$ref)) throw new Error(`schema: cannot follow $ref ${node.$ref}`);
  const { $ref, ...own } = node;
  return { ...deref(target, [...seen, $ref]), ...own };
}

/**
 * Every field a moshproxy.yaml may set, by path: `mosh.transport`,
 * `hosts.<name>.via` (a map's keys are `<name>`), `defaults.relay.ports`.
 * `$ref`s and anyOf/oneOf/allOf branches are followed; a list of objects
 * would give `path[].field`.
 */
function schemaFields(
  node: SchemaNode,
  path = '',
  out = new Map<string, SchemaNode>(),
): Map<string, SchemaNode> {
  const n = deref(node);
  const at = (key: string): string => (path ? `${path}.${key}` : key);
  for (const branch of [...(n.anyOf ?? []), ...(n.oneOf ?? []), ...(n.allOf ?? [])])
    schemaFields(branch, path, out);
  for (const [key, child] of Object.entries(n.properties ?? {})) {
    out.set(at(key), deref(child));
    schemaFields(child, at(key), out);
  }
  if (typeof n.additionalProperties === 'object') {
    out.set(at('<name>'), deref(n.additionalProperties));
    schemaFields(n.additionalProperties, at('<name>'), out);
  }
  if (n.items) schemaFields(n.items, `${path}[]`, out);
  return out;
}

// --- Options from spec.ts ----------------------------------------------------

/** `--name` and `-x` of each option. */
function flags(options: Record<string, OptionSpec>): string[] {
  return Object.entries(options).flatMap(([name, o]) => [`--${name}`, ...(o.short ? [`-${o.short}`] : [])]);
}

/**
 * The moshctl options a text names: in code spans that are moshctl command
 * lines or options (`-f FILE`, `[--json]`, `moshctl up NAME --no-connect`),
 * not in another program's (`ssh -G`), and not `-- COMMAND`.
 */
function optionsNamed(text: string): string[] {
  const named = codeSpans(text)
    .filter((c) => /^(-|\[|moshctl\b)/.test(c))
    .flatMap((c) =>
      [...c.matchAll(/(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z](?![\w-]))/g)].map((m) => m[1] ?? ''),
    );
  return [...new Set(named)];
}

// --- Exit codes from errors.ts -------------------------------------------------

/** The first clause of each ExitCode's doc comment in src/errors.ts (the meaning docs/commands.md must give). */
function exitCodeMeanings(): Map<string, string> {
  const source = readFileSync(resolve(root, 'src/errors.ts'), 'utf8');
  const block = /export const ExitCode = \{([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';
  const out = new Map<string, string>();
  for (const m of block.matchAll(/(?:\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*)?(\w+):\s*\d+/g)) {
    const doc = (m[1] ?? '')
      .replace(/^\s*\*\s?/gm, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    const clause = doc.split(/;|\(|\.(?:\s|$)/)[0]?.trim() ?? '';
    if (clause) out.set(m[2] ?? '', clause);
  }
  return out;
}

const squash = (s: string): string => s.toLowerCase().replace(/\s+/g, ' ');

// --- The tests -----------------------------------------------------------------

describe(`${configDoc.path} "Config reference" and schemas/moshproxy.schema.json`, () => {
  const fields = schemaFields(schema);
  const ref = section(configDoc, 'Config reference');
  // The first cell of each row names the fields the row is about, as code: `mosh.transport`, `defaults.port`.
  const rows = ref ? tableRows(ref.body).map((cells) => ({ paths: codeSpans(cells[0] ?? ''), cells })) : [];
  const documented = rows.flatMap((r) => r.paths);

  it('has the section, with a table', () => {
    expect(ref, missingSection(configDoc, 'Config reference')).toBeDefined();
    expect(rows.length, `${configDoc.path} "Config reference" has no table rows`).toBeGreaterThan(0);
    expect([...fields.keys()]).toContain('hosts.<name>.via');
  });

  it('lists every field of the schema', () => {
    expect(
      [...fields.keys()].filter((f) => !documented.includes(f)),
      `fields of schemas/moshproxy.schema.json missing from the first column of ${configDoc.path} "Config reference"`,
    ).toEqual([]);
  });

  it('lists no field the schema lacks, and each once', () => {
    expect(
      documented.filter((f) => !fields.has(f)),
      `fields in ${configDoc.path} "Config reference" that schemas/moshproxy.schema.json does not have`,
    ).toEqual([]);
    expect(
      documented.filter((f, i) => documented.indexOf(f) !== i),
      `fields listed twice in ${configDoc.path} "Config reference"`,
    ).toEqual([]);
  });

  it('names every allowed value of a field with a fixed set', () => {
    const missing = rows.flatMap(({ paths, cells }) => {
      const said = codeSpans(cells.slice(1).join(' '));
      return paths.flatMap((p) => {
        const f = fields.get(p);
        const allowed = f?.enum ?? (f && 'const' in f ? [f.const] : []);
        return allowed.filter((v) => !said.includes(String(v))).map((v) => `${p}: \`${String(v)}\``);
      });
    });
    expect(
      missing,
      `values of the schema (enum, const) that the row of ${configDoc.path} does not name as code`,
    ).toEqual([]);
  });
});

describe(`${commandsDoc.path} "Command reference" and src/cli/spec.ts`, () => {
  const ref = section(commandsDoc, 'Command reference');
  /** The subsection of each command: its heading is `moshctl NAME`. */
  const parts = new Map(
    (ref?.parts ?? []).flatMap((p) => {
      const name = /^moshctl ([a-z][a-z-]*)$/.exec(codeSpans(p.heading.text)[0] ?? '')?.[1];
      return name ? [[name, p] as const] : [];
    }),
  );
  const global = flags(globalOptions);

  it('has the section', () => {
    expect(ref, missingSection(commandsDoc, 'Command reference')).toBeDefined();
  });

  it('has a subsection for every command, and none for a command spec.ts lacks', () => {
    const names = commands.map((c) => c.name);
    expect(
      names.filter((n) => !parts.has(n)),
      `commands of src/cli/spec.ts without a "#### \`moshctl NAME\`" subsection in ${commandsDoc.path} "Command reference"`,
    ).toEqual([]);
    expect(
      [...parts.keys()].filter((n) => !names.includes(n)),
      `commands in ${commandsDoc.path} "Command reference" that src/cli/spec.ts does not have`,
    ).toEqual([]);
  });

  it('gives every global option before the commands, and no other option there', () => {
    const named = optionsNamed(ref?.preamble ?? '');
    expect(
      global.filter((o) => !named.includes(o)),
      `global options of src/cli/spec.ts missing from ${commandsDoc.path} "Command reference" (before the first command)`,
    ).toEqual([]);
    expect(
      named.filter((o) => !global.includes(o)),
      `options in ${commandsDoc.path} "Command reference" (before the first command) that are not global options in src/cli/spec.ts`,
    ).toEqual([]);
  });

  it.each(commands.map((c) => [c.name, c] as const))('moshctl %s: usage and every option', (name, c) => {
    const part = parts.get(name);
    expect(
      part,
      `${commandsDoc.path} "Command reference" has no "#### \`moshctl ${name}\`" subsection`,
    ).toBeDefined();
    if (!part) return;
    expect(
      codeSpans(part.body),
      `${commandsDoc.path} "moshctl ${name}" does not show its usage as code`,
    ).toContain(c.usage);
    const own = flags(c.options);
    const named = optionsNamed(part.body);
    expect(
      own.filter((o) => !named.includes(o)),
      `options of ${name} in src/cli/spec.ts missing from ${commandsDoc.path} "moshctl ${name}"`,
    ).toEqual([]);
    expect(
      named.filter((o) => !own.includes(o) && !global.includes(o)),
      `options in ${commandsDoc.path} "moshctl ${name}" that ${name} does not have in src/cli/spec.ts`,
    ).toEqual([]);
  });
});

describe(`${commandsDoc.path} "Exit codes" and ExitCode in src/errors.ts`, () => {
  const ref = section(commandsDoc, 'Exit codes');
  const rows = ref
    ? tableRows(ref.body).map((cells) => ({
        codes: [...(cells[0] ?? '').matchAll(/\d+/g)].map((m) => m[0]),
        cells,
      }))
    : [];
  const meanings = exitCodeMeanings();

  it('has the section, with a table', () => {
    expect(ref, missingSection(commandsDoc, 'Exit codes')).toBeDefined();
    expect(rows.length, `${commandsDoc.path} "Exit codes" has no table rows`).toBeGreaterThan(0);
  });

  it.each(Object.entries(ExitCode))('%s (%i): its number, its name and its meaning', (name, code) => {
    const row = rows.find((r) => r.codes.includes(String(code)));
    expect(row, `${commandsDoc.path} "Exit codes" has no row for ${code} (ExitCode.${name})`).toBeDefined();
    const text = (row?.cells ?? []).join(' | ');
    expect(
      codeSpans(text),
      `${commandsDoc.path} "Exit codes", row ${code}, does not name ExitCode.${name} as \`${name}\``,
    ).toContain(name);
    const meaning = meanings.get(name);
    if (meaning)
      expect(
        squash(text),
        `${commandsDoc.path} "Exit codes", row ${code}, does not say what src/errors.ts says of ExitCode.${name}: "${meaning}"`,
      ).toContain(squash(meaning));
  });

  it('lists no code that moshctl does not exit with', () => {
    const known = new Set<number>(Object.values(ExitCode));
    const signals = constants.signals as Record<string, number>;
    const stray = rows.flatMap(({ codes, cells }) =>
      codes
        .map(Number)
        .filter((n) => !known.has(n))
        // 128 + N: ended by signal N, allowed where the row names that signal.
        .filter(
          (n) =>
            !Object.entries(signals).some(([sig, num]) => 128 + num === n && cells.join(' ').includes(sig)),
        )
        .map((n) => `${n}: neither an ExitCode in src/errors.ts nor 128 + a signal the row names`),
    );
    expect(stray, `codes in ${commandsDoc.path} "Exit codes" that moshctl does not have`).toEqual([]);
  });
});

describe('links between README.md and docs/', () => {
  const docs = new Map(markdown.map((p) => [p, readDoc(p)]));

  it('README.md links to every page of docs/', () => {
    expect(docPages).toContain(configDoc.path);
    expect(docPages).toContain(commandsDoc.path);
    const linked = linkTargets(docs.get('README.md') as Doc)
      .filter((t) => !isExternal(t) && !t.startsWith('#'))
      .map((t) => relative(root, resolve(root, decodeURIComponent(t.split('#')[0] ?? ''))));
    expect(
      docPages.filter((p) => !linked.includes(p)),
      'pages of docs/ that README.md does not link to',
    ).toEqual([]);
  });

  it('every #anchor link of README.md names one of its headings', () => {
    const readme = docs.get('README.md') as Doc;
    const anchors = anchorsOf(readme);
    const links = linkTargets(readme)
      .filter((t) => t.startsWith('#'))
      .map((t) => t.slice(1));
    expect(links.length).toBeGreaterThan(0);
    expect(
      links.filter((a) => !anchors.has(a)),
      'links in README.md to headings it does not have',
    ).toEqual([]);
  });

  it.each(markdown)('%s: every relative link names a file, and a heading there, that exist', (path) => {
    const doc = docs.get(path) as Doc;
    const broken = linkTargets(doc)
      .filter((t) => !isExternal(t))
      .flatMap((target) => {
        const [file = '', hash] = target.split('#', 2);
        // `#anchor` alone is this page; a path is relative to the page's folder.
        const to =
          file === '' ? path : relative(root, resolve(root, dirname(path), decodeURIComponent(file)));
        if (!existsSync(resolve(root, to))) return [`${target}: no file ${to}`];
        if (hash === undefined || !to.endsWith('.md')) return [];
        const page = docs.get(to) ?? readDoc(to);
        return anchorsOf(page).has(hash) ? [] : [`${target}: ${to} has no heading with anchor #${hash}`];
      });
    expect(broken, `links in ${path} to files or headings that do not exist`).toEqual([]);
  });

  it('the link check finds links across pages, and headings there', () => {
    // So that the test above cannot pass by finding no link at all.
    const across = [...docs.values()].flatMap((d) => linkTargets(d).filter((t) => /\.md#/.test(t)));
    expect(across.length).toBeGreaterThan(0);
  });
});

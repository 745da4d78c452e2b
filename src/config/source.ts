// Reads one config file into plain data plus an origin map: JSON pointer →
// file:line:column of the value (and of its key). Every later check reports
// through the origin map, so merged files still point at the line to edit.
import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, Scalar, visit } from 'yaml';
import type { Node } from 'yaml';
import type { Problem } from '../errors.js';
import { interpolate, type Env } from './interpolate.js';
import { checkExpanded, checkTokens, LIMITS } from './limits.js';

export interface Position {
  file: string;
  line: number;
  column: number;
}

export interface Origin {
  value: Position;
  key?: Position;
}

/**
 * JSON pointer (RFC 6901, as ajv's instancePath) → where that value came
 * from: a Map, or plain-origins.ts's lookups that give the same answers.
 */
export interface Origins {
  get(ptr: string): Origin | undefined;
  has(ptr: string): boolean;
  [Symbol.iterator](): Iterator<[string, Origin]>;
}

export interface Source {
  file: string;
  data: unknown;
  origins: Origins;
  problems: Problem[];
}

export function pointer(parent: string, segment: string | number): string {
  const s = String(segment);
  // Most segments need no escaping: skipping the two replaces counts with 20 000 hosts.
  return `${parent}/${s.includes('~') || s.includes('/') ? s.replace(/~/g, '~0').replace(/\//g, '~1') : s}`;
}

/**
 * YAML 1.2's core schema whatever the file's `%YAML` line says, and no tags
 * beyond it (`!!binary`, `!!set`, `!!omap` would make Buffers, Sets and Maps
 * the checks do not expect): the same types the JSON Schema describes.
 */
const YAML_OPTIONS = {
  uniqueKeys: false,
  schema: 'core',
  resolveKnownTags: false,
  // Warnings become problems below; yaml must not print them on stderr itself.
  logLevel: 'error',
} as const;

/** yaml's default: an anchored value may be repeated about this often, aliases inside aliases multiplied. */
const MAX_ALIAS_COUNT = 100;

export function parseSource(file: string, text: string, env: Env): Source {
  const lines = new LineCounter();
  const at = (offset: number | undefined): Position => {
    const { line, col } = lines.linePos(offset ?? 0);
    return { file, line, column: col };
  };
  const origins = new Map<string, Origin>();
  const fail = (problems: Problem[]): Source => ({ file, data: undefined, origins, problems });

  // parseDocument's two stages, with the size and depth checked in between:
  // the composer recurses once per level of nesting.
  const tokens = [...new Parser(lines.addNewLine).parse(text)];
  const excess = checkTokens(tokens);
  if (excess) return fail([{ ...at(excess.offset), message: excess.message, hint: excess.hint }]);
  const [doc, second] = new Composer(YAML_OPTIONS).compose(tokens, true, text.length);
  if (!doc) return fail([{ file, line: 1, column: 1, ...EMPTY }]);

  const problems: Problem[] = doc.errors.map((e) => ({
    ...at(e.pos[0]),
    message: `YAML syntax: ${firstLine(e.message)}`,
    hint: 'fix the YAML at this spot',
  }));
  for (const w of doc.warnings) {
    if (w.code !== 'TAG_RESOLVE_FAILED') continue;
    problems.push({
      ...at(w.pos[0]),
      message: `the tag ${shorten(text.slice(w.pos[0], w.pos[1]))} is not supported`,
      hint: 'remove it: a moshproxy.yaml holds plain strings, numbers, true/false, lists and maps',
    });
  }
  if (second) {
    problems.push({
      ...at(second.range[0]),
      message: 'a second YAML document starts here',
      hint: 'a moshproxy.yaml is one document: remove this "---" and what follows, or put it in a file of its own and add it with -f',
    });
  }
  if (problems.length > 0) return fail(problems);

  /** Anchors seen so far, in document order, as yaml resolves them: the last one of a name before the alias. */
  const anchors = new Map<string, Node>();
  /** The collections around the node being walked: an alias to one of them would make a value that never ends. */
  const around = new Set<Node>();
  let firstAlias: Position | undefined;
  /** Problems that leave no data to check further (a key that is a list, an alias to nowhere). */
  const broken: Problem[] = [];

  // Interpolate in place on the document's scalars, so aliases see the result too.
  const walk = (node: Node | null | undefined, ptr: string, key?: Position): void => {
    const value = at(node?.range?.[0] ?? undefined);
    origins.set(ptr, key ? { value: node ? value : key, key } : { value });
    if (!node) return;
    if (node.anchor) anchors.set(node.anchor, node);
    if (isAlias(node)) {
      firstAlias ??= value;
      const target = anchors.get(node.source);
      if (!target) {
        broken.push({
          ...value,
          message: `the alias *${node.source} has no anchor &${node.source} before it`,
          hint: `write &${node.source} on the value to repeat, above this line`,
        });
      } else if (around.has(target)) {
        broken.push({
          ...value,
          message: `the alias *${node.source} repeats a value that contains it`,
          hint: 'that value would never end; repeat a value beside it instead',
        });
      }
      return;
    }
    if (isScalar(node)) {
      node.value = finishScalar(
        node.value,
        node.type === Scalar.PLAIN,
        node.source,
        () => value,
        env,
        problems,
      );
      return;
    }
    around.add(node);
    if (isMap(node)) {
      // Duplicate keys are found here rather than by yaml's uniqueKeys, which compares every pair (quadratic).
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        const keyPos = at(k?.range?.[0] ?? undefined);
        if (!isScalar(k) || typeof k.value === 'object') {
          broken.push({ ...keyPos, message: 'a key must be a plain string', hint: 'write key: value' });
          // Anchors inside it still count for aliases after it.
          visit(k, { Node: (_, n) => void (n.anchor && anchors.set(n.anchor, n)) });
          walk(pair.value as Node | null, pointer(ptr, '?'), keyPos);
          continue;
        }
        if (k.anchor) anchors.set(k.anchor, k);
        // A key like `22:` or `true:` is a scalar of another type; it names the key all the same.
        const name = typeof k.value === 'string' ? k.value : JSON.stringify(k.value);
        const first = seen.get(name);
        if (first !== undefined) broken.push(duplicateKey(keyPos, name, first));
        seen.set(name, keyPos.line);
        walk(pair.value as Node | null, pointer(ptr, name), keyPos);
      }
    }
    if (isSeq(node)) node.items.forEach((item, i) => walk(item as Node, pointer(ptr, i)));
    around.delete(node);
  };
  walk(doc.contents, '');
  if (broken.length > 0) return fail([...problems, ...broken]);

  if (doc.contents === null) problems.push({ file, line: 1, column: 1, ...EMPTY });
  const aliasing = (): Source => fail([...problems, { ...(firstAlias ?? at(0)), ...TOO_MUCH_ALIASING }]);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    // yaml's guard against "billion laughs": aliases of aliases, each repeating the one before.
    if (e instanceof ReferenceError) return aliasing();
    throw e;
  }
  // Without aliases the data is the file as written, within LIMITS.values already.
  if (firstAlias && checkExpanded(data)) return aliasing();
  return { file, data, origins, problems };
}

/**
 * A scalar's value as the checks see it: variables replaced (an unquoted
 * `${PORT:-22}` becomes the number 22, as if written plainly), and a number
 * JavaScript does not hold as written reported. `source` is the text as written;
 * `at` says where, asked only for a problem.
 */
export function finishScalar(
  value: unknown,
  plain: boolean,
  source: string | undefined,
  at: () => Position,
  env: Env,
  problems: Problem[],
): unknown {
  let out = value;
  let written = source;
  if (typeof value === 'string' && value.includes('$')) {
    const result = interpolate(value, env);
    for (const e of result.errors) problems.push({ ...at(), message: e.message, hint: e.hint });
    out = plain && /^-?\d+$/.test(result.value) ? Number(result.value) : result.value;
    written = result.value;
  }
  // 1e400 is Infinity and 99999999999999999999 is 1e20 to JavaScript: neither is what was written.
  if (
    typeof out !== 'number' ||
    (Number.isFinite(out) && (!Number.isInteger(out) || Number.isSafeInteger(out)))
  )
    return out;
  const shown = shorten(written ?? String(out));
  problems.push({
    ...at(),
    message: Number.isNaN(out) ? `${shown} is not a number` : `the number ${shown} is too large`,
    hint: 'ports and timeouts are whole numbers well below that; quote the value if it is meant as text',
  });
  return out;
}

/** The second of two equal keys in a map; `first` is the line of the one before. */
export function duplicateKey(at: Position, name: string, first: number): Problem {
  return {
    ...at,
    message: `YAML syntax: Map keys must be unique: "${shorten(name)}" is also on line ${first}`,
    hint: 'remove one of the two keys',
  };
}

const EMPTY = { message: 'the file is empty', hint: 'start with "version: 1"' };

const TOO_MUCH_ALIASING = {
  message: 'the aliases in this file expand to too much data',
  hint: `a value may be repeated through aliases about ${MAX_ALIAS_COUNT} times in all, aliases inside aliases multiplied, and nest ${LIMITS.depth} levels deep; write the values out, or share settings through defaults:`,
};

function shorten(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

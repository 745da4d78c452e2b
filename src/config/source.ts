// Reads one config file into plain data plus an origin map: JSON pointer →
// file:line:column of the value (and of its key). Every later check reports
// through the origin map, so merged files still point at the line to edit.
import { LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, Scalar } from 'yaml';
import type { Node } from 'yaml';
import type { Problem } from '../errors.js';
import { interpolate, type Env } from './interpolate.js';

export interface Position {
  file: string;
  line: number;
  column: number;
}

export interface Origin {
  value: Position;
  key?: Position;
}

/** JSON pointer (RFC 6901, as ajv's instancePath) → where that value came from. */
export type Origins = Map<string, Origin>;

export interface Source {
  file: string;
  data: unknown;
  origins: Origins;
  problems: Problem[];
}

export function pointer(parent: string, segment: string | number): string {
  return `${parent}/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

export function parseSource(file: string, text: string, env: Env): Source {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const problems: Problem[] = [];
  const at = (offset: number | undefined): Position => {
    const { line, col } = lines.linePos(offset ?? 0);
    return { file, line, column: col };
  };

  for (const e of doc.errors) {
    const { line, column } = at(e.pos[0]);
    problems.push({
      file,
      line,
      column,
      message: `YAML syntax: ${firstLine(e.message)}`,
      hint: e.code === 'DUPLICATE_KEY' ? 'remove one of the two keys' : 'fix the YAML at this spot',
    });
  }
  const origins: Origins = new Map();
  if (problems.length > 0) return { file, data: undefined, origins, problems };

  // Interpolate in place on the document's scalars, so aliases see the result too.
  const walk = (node: Node | null | undefined, ptr: string, key?: Position): void => {
    const value = at(node?.range?.[0] ?? undefined);
    origins.set(ptr, key ? { value: node ? value : key, key } : { value });
    if (!node || isAlias(node)) return;
    if (isScalar(node)) {
      if (typeof node.value === 'string' && node.value.includes('$')) interpolateScalar(node, value);
      return;
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key;
        const keyPos = at(isScalar(k) ? k.range?.[0] : undefined);
        if (!isScalar(k) || typeof k.value === 'object') {
          problems.push({ ...keyPos, message: 'a key must be a plain string', hint: 'write key: value' });
          continue;
        }
        // A key like `22:` or `true:` is a scalar of another type; it names the key all the same.
        const name = typeof k.value === 'string' ? k.value : JSON.stringify(k.value);
        walk(pair.value as Node | null, pointer(ptr, name), keyPos);
      }
      return;
    }
    if (isSeq(node)) node.items.forEach((item, i) => walk(item as Node, pointer(ptr, i)));
  };
  const interpolateScalar = (node: Scalar, pos: Position): void => {
    const raw = String(node.value);
    const result = interpolate(raw, env);
    for (const e of result.errors) problems.push({ ...pos, message: e.message, hint: e.hint });
    // An unquoted `${PORT:-22}` should be the number 22, as if written plainly.
    node.value =
      node.type === Scalar.PLAIN && /^-?\d+$/.test(result.value) ? Number(result.value) : result.value;
  };
  walk(doc.contents, '');

  if (doc.contents === null) {
    problems.push({
      file,
      line: 1,
      column: 1,
      message: 'the file is empty',
      hint: 'start with "version: 1"',
    });
  }
  return { file, data: doc.toJS({ maxAliasCount: 100 }) as unknown, origins, problems };
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

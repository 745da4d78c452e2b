// Reads the plain YAML that generated files are written in, several times
// faster than the yaml package: maps and lists in block style, `[a, b]` and
// `{key: value}` on one line, plain and quoted strings, numbers, true/false,
// null and comments. The result is what source.ts's full parser gives for the
// same text: the same data, origins and problems (plain-yaml.test.ts compares
// the two on random files). Anything else stops it (anchors, aliases, tags,
// block scalars, a value over several lines, an empty value, odd
// indentation), and it says where and what: read.ts then hands the file to
// the full parser, if it is small enough for that.
import type { Problem } from '../errors.js';
import type { Env } from './interpolate.js';
import { LIMITS, tooDeep, tooManyValues, type Excess } from './limits.js';
import { PlainOrigins } from './plain-origins.js';
import { COLON, HASH, NotPlain, readScalar, SPACE, stop } from './plain-scalars.js';
import { duplicateKey, finishScalar, type Source } from './source.js';

/** The file read, or where the reader stopped: what it found there, or a limit the file goes past. */
export type PlainRead = { source: Source; stop?: undefined } | { source?: undefined; stop: Excess };

/** yaml refuses an implicit key (`key:` without `?`) longer than this. */
const MAX_KEY = 1024;
const COMMA = 0x2c;

class OverLimit extends Error {
  constructor(readonly stop: Excess) {
    super(stop.message);
  }
}

type Container = Record<string, unknown> | unknown[];

/** A block map or list still open, and its place among the origins. */
interface Frame {
  seq: boolean;
  indent: number;
  value: Container;
  node: number;
  /** Nesting level, the whole file being 1. */
  level: number;
  /** A list written at the indentation of the key that holds it (`via:`, then `- a` below it). */
  atKeyIndent: boolean;
}

/** A key whose value starts on a later line: a block map or list. */
interface Pending {
  parent: Frame;
  name: string;
  keyAt: number;
}

export function readPlainYaml(file: string, text: string, env: Env): PlainRead {
  const origins = new PlainOrigins(file);
  const problems: Problem[] = [];
  const broken: Problem[] = [];
  let values = 0;
  /** The line being read ends here (before a \r\n). */
  let end = 0;
  const count = (offset: number): void => {
    if (++values > LIMITS.values) throw new OverLimit(tooManyValues(offset));
  };
  const deeper = (level: number, offset: number): void => {
    if (level > LIMITS.depth) throw new OverLimit(tooDeep(offset));
  };
  const skipSpaces = (i: number): number => {
    while (i < end && text.charCodeAt(i) === SPACE) i++;
    return i;
  };
  /** After a value, only spaces and a comment may follow on its line. */
  const lineRest = (i: number): void => {
    const j = skipSpaces(i);
    if (j < end && !(text.charCodeAt(j) === HASH && j > i)) stop(j, 'more after a value');
  };
  /** Stores a value as yaml's toJS does: `__proto__` and the like become own keys. */
  const put = (into: Container, name: string | number, value: unknown): void => {
    if (Array.isArray(into)) into.push(value);
    else if (name in into)
      Object.defineProperty(into, name, { value, writable: true, enumerable: true, configurable: true });
    else into[name] = value;
  };
  /** A key's name as the full parser's walk gives it (`22:` and `true:` name keys too); a repeated one is reported. */
  const keyName = (into: Container, node: number, value: unknown, offset: number): string => {
    let name: string;
    if (typeof value === 'string') name = value;
    else if ((typeof value === 'number' && Number.isSafeInteger(value)) || typeof value === 'boolean')
      name = String(value);
    else return stop(offset, 'a key that is not a string');
    if (Object.hasOwn(into, name))
      broken.push(duplicateKey(origins.position(offset), name, origins.lineOfKey(node, name) ?? 0));
    return name;
  };

  /** A value on this line at `i` (a flow collection or a scalar), stored in `into`; returns where it ends. */
  const inline = (
    i: number,
    into: Container,
    parent: number,
    name: string | number,
    keyAt: number,
    level: number,
    flow: boolean,
  ): number => {
    const node = origins.add(parent, name, keyAt, i);
    count(i);
    const c = text.charCodeAt(i);
    if (c !== 0x5b && c !== 0x7b) {
      const s = readScalar(text, i, end, flow, false);
      if (flow && text.charCodeAt(skipSpaces(s.end)) === COLON) stop(i, 'a key: value inside a [list]');
      put(
        into,
        name,
        finishScalar(s.value, s.plain, s.source, () => origins.position(i), env, problems),
      );
      return s.end;
    }
    deeper(level + 1, i);
    const seq = c === 0x5b;
    const close = seq ? 0x5d : 0x7d;
    const value: Container = seq ? [] : {};
    put(into, name, value);
    let j = skipSpaces(i + 1);
    if (text.charCodeAt(j) === close) return j + 1;
    for (;;) {
      if (j >= end) stop(i, 'a list or map over several lines');
      if (Array.isArray(value)) j = inline(j, value, node, value.length, -1, level + 1, true);
      else {
        const k = readScalar(text, j, end, true, true);
        const kName = keyName(value, node, k.value, j);
        count(j);
        let v = skipSpaces(k.end);
        if (text.charCodeAt(v) !== COLON || text.charCodeAt(v + 1) !== SPACE)
          stop(v, 'a key without ": " after it');
        v = skipSpaces(v + 2);
        if (v >= end || text.charCodeAt(v) === COMMA || text.charCodeAt(v) === close)
          stop(v, 'an empty value');
        j = inline(v, value, node, kName, j, level + 1, true);
      }
      j = skipSpaces(j);
      const d = text.charCodeAt(j);
      if (d === close) return j + 1;
      if (d !== COMMA) stop(j, j >= end ? 'a list or map over several lines' : 'more after a value');
      j = skipSpaces(j + 1);
      if (text.charCodeAt(j) === close) stop(j, 'a comma before the end of a list or map');
    }
  };

  const stack: Frame[] = [];
  let pending: Pending | undefined;
  let root: Container | undefined;
  /** Whether a value, or the `---` that may start the file, came before. */
  let started = false;
  /** Opens a block map or list whose first entry starts at `at`. */
  const open = (seq: boolean, indent: number, at: number, parent: Frame | undefined): Frame => {
    const level = parent ? parent.level + 1 : 1;
    deeper(level, at);
    const node = pending
      ? origins.add(pending.parent.node, pending.name, pending.keyAt, at)
      : origins.add(-1, '', -1, at);
    count(at);
    const frame: Frame = {
      seq,
      indent,
      value: seq ? [] : {},
      node,
      level,
      atKeyIndent: !!parent && indent === parent.indent,
    };
    if (pending) put(pending.parent.value, pending.name, frame.value);
    stack.push(frame);
    return frame;
  };

  try {
    // A carriage return ends a line only before a newline here: yaml counts lines by newlines.
    const cr = /\r(?!\n)/.exec(text);
    if (cr) stop(cr.index, 'a carriage return');
    // yaml drops a byte order mark where a document may start.
    const bom = text.indexOf('\ufeff');
    if (bom >= 0) stop(bom, 'a byte order mark');
    for (let next = 0; next <= text.length;) {
      const lineStart = next;
      origins.line(lineStart);
      let nl = text.indexOf('\n', next);
      if (nl < 0) nl = text.length;
      next = nl + 1;
      end = nl > lineStart && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
      const ind = skipSpaces(lineStart);
      if (ind >= end || text.charCodeAt(ind) === HASH) continue;
      const indent = ind - lineStart;
      const first = text.charCodeAt(ind);
      if (first === 0x09) stop(ind, 'a tab');
      if (!started && indent === 0 && text.startsWith('---', ind) && skipSpaces(ind + 3) === end) {
        started = true;
        continue;
      }
      started = true;
      if (first === 0x25 || (indent === 0 && (text.startsWith('---', ind) || text.startsWith('...', ind))))
        stop(ind, 'a document marker or directive');
      const dash = first === 0x2d && (ind + 1 >= end || text.charCodeAt(ind + 1) === SPACE);

      if (root === undefined) {
        if (indent !== 0) stop(ind, 'an indented first line');
        root = open(dash, 0, ind, undefined).value;
      } else if (pending) {
        const parent = pending.parent;
        if (!(indent > parent.indent || (indent === parent.indent && dash && !parent.seq)))
          stop(pending.keyAt, 'an empty value');
        open(dash, indent, ind, parent);
        pending = undefined;
      }
      let top = stack[stack.length - 1];
      while (top && (top.indent > indent || (top.seq && top.atKeyIndent && top.indent === indent && !dash))) {
        stack.pop();
        top = stack[stack.length - 1];
      }
      if (!top || top.indent !== indent) stop(ind, 'an indentation that matches no map or list above');

      if (top.seq) {
        if (!dash) stop(ind, 'a key: value among the items of a list');
        const v = skipSpaces(ind + 1);
        if (v >= end || text.charCodeAt(v) === HASH) stop(ind, 'a list item on the lines after its "-"');
        const list = top.value as unknown[];
        lineRest(inline(v, list, top.node, list.length, -1, top.level, false));
        continue;
      }
      if (dash) stop(ind, 'a list item among the keys of a map');
      const k = readScalar(text, ind, end, false, true);
      const name = keyName(top.value, top.node, k.value, ind);
      count(ind);
      let v = skipSpaces(k.end);
      if (text.charCodeAt(v) !== COLON || !(v + 1 >= end || text.charCodeAt(v + 1) === SPACE))
        stop(ind, 'a line that is not key: value');
      if (v - ind >= MAX_KEY) stop(ind, `a key longer than ${MAX_KEY} characters`);
      v = skipSpaces(v + 1);
      if (v >= end || text.charCodeAt(v) === HASH) pending = { parent: top, name, keyAt: ind };
      else lineRest(inline(v, top.value, top.node, name, ind, top.level, false));
    }
    if (pending) stop(pending.keyAt, 'an empty value');
  } catch (e) {
    if (e instanceof NotPlain) return { stop: notPlain(e.offset, e.what) };
    if (e instanceof OverLimit) return { stop: e.stop };
    throw e;
  }
  if (root === undefined) return { stop: notPlain(0, 'nothing but comments') };
  if (broken.length > 0) {
    // The walk down by name knows only the last of two equal keys; the whole Map knows both.
    origins.settle();
    return { source: { file, data: undefined, origins, problems: [...problems, ...broken] } };
  }
  return { source: { file, data: root, origins, problems } };
}

function notPlain(offset: number, what: string): Excess {
  return {
    offset,
    message: `${what}: a file larger than ${LIMITS.yamlBytes / 1024} KiB must be plain YAML`,
    hint: 'such a file is read by a faster reader that takes maps and lists, one value per line or as [a, b] and {key: value} on one line, with plain or quoted strings and numbers; write it that way, or split it into files given with -f',
  };
}

// The scalars of plain YAML, for plain-yaml.ts: where a value on a line ends,
// and what it is, as yaml's core schema reads it (the schema's own tags
// decide null, true/false, integers and floats). Quoted values on one line
// without escapes; anything else stops the reader.
import { isScalar, Schema, type ScalarTag } from 'yaml';

export const SPACE = 0x20;
export const HASH = 0x23;
export const COLON = 0x3a;
const TAB = 0x09;
const DOUBLE = 0x22;
const SINGLE = 0x27;

/** Thrown where the text stops being plain YAML, with what was found there. */
export class NotPlain extends Error {
  constructor(
    readonly offset: number,
    readonly what: string,
  ) {
    super(what);
  }
}

export function stop(offset: number, what: string): never {
  throw new NotPlain(offset, what);
}

export interface ScalarRead {
  value: unknown;
  /** Just after the value, trailing spaces left out. */
  end: number;
  /** The text as written (for a quoted value, what is between the quotes). */
  source: string;
  plain: boolean;
}

const DIGITS = /^[0-9]+$/;

/** The core schema's plain-scalar types (null, bool, int, float), in yaml's own order. */
const TAGS = new Schema({ schema: 'core', resolveKnownTags: false }).tags.filter(
  (t): t is ScalarTag & { test: RegExp } => t.default === true && 'test' in t && t.test instanceof RegExp,
);

/**
 * The scalar at `i` on a line that ends at `end`: in a flow collection (`[...]`,
 * `{...}`) or not, as a key (followed by `:`) or a value.
 */
export function readScalar(text: string, i: number, end: number, flow: boolean, key: boolean): ScalarRead {
  const c = text.charCodeAt(i);
  if (c === DOUBLE || c === SINGLE) return quoted(text, i, end);
  const what = indicator(text, i, end, flow);
  if (what) stop(i, what);
  let j = i;
  for (; j < end; j++) {
    const d = text.charCodeAt(j);
    if (d === HASH && text.charCodeAt(j - 1) === SPACE) break;
    if (d === TAB) stop(j, 'a tab');
    if (d === COLON) {
      const n = j + 1 < end ? text.charCodeAt(j + 1) : SPACE;
      if (n === SPACE || (flow && isFlowIndicator(n))) break;
    }
    if (flow && isFlowIndicator(d)) break;
  }
  let k = j;
  while (k > i && text.charCodeAt(k - 1) === SPACE) k--;
  if (!key && j < end && text.charCodeAt(j) === COLON) stop(i, 'a map inside a value');
  const source = text.slice(i, k);
  return { value: resolvePlain(source, i), end: k, source, plain: true };
}

function quoted(text: string, i: number, end: number): ScalarRead {
  const quote = text.charCodeAt(i);
  let close = text.indexOf(quote === DOUBLE ? '"' : "'", i + 1);
  // '' is a quote inside single quotes.
  while (quote === SINGLE && close >= 0 && close < end && text.charCodeAt(close + 1) === SINGLE)
    close = text.indexOf("'", close + 2);
  if (close < 0 || close >= end) stop(i, 'a quoted value over several lines');
  const inside = text.slice(i + 1, close);
  if (quote === DOUBLE && inside.includes('\\')) stop(i, 'an escape (\\) in a quoted value');
  const value = quote === SINGLE ? inside.replaceAll("''", "'") : inside;
  return { value, end: close + 1, source: value, plain: false };
}

function resolvePlain(s: string, offset: number): unknown {
  // Most values start with a letter that no null, boolean or number starts with: a string, no tag to try.
  const c = s.charCodeAt(0) | 0x20;
  if (c >= 0x61 && c <= 0x7a && c !== 0x6e && c !== 0x74 && c !== 0x66) return s;
  // Digits only: the core schema's int, read as its resolve does (after null, bool and 0o, none of which matches).
  if (DIGITS.test(s)) return parseInt(s, 10);
  for (const tag of TAGS) {
    if (!tag.test.test(s)) continue;
    let failed = false;
    const value: unknown = tag.resolve(s, () => (failed = true), { intAsBigInt: false });
    if (failed) stop(offset, 'a value the YAML core schema does not read');
    // A float comes back as a node that remembers how it was written.
    return isScalar(value) ? value.value : value;
  }
  return s;
}

export function isFlowIndicator(c: number): boolean {
  return c === 0x2c || c === 0x5b || c === 0x5d || c === 0x7b || c === 0x7d;
}

/** What a plain scalar may not start with, named; undefined when one may start here. */
function indicator(text: string, i: number, end: number, flow: boolean): string | undefined {
  const c = text.charCodeAt(i);
  switch (c) {
    case 0x26:
      return 'an anchor (&)';
    case 0x2a:
      return 'an alias (*)';
    case 0x21:
      return 'a tag (!)';
    case 0x7c:
    case 0x3e:
      return 'a block scalar (| or >)';
    case TAB:
      return 'a tab';
    case 0x2d: {
      // -1 and -x are plain values; "- " starts a list item.
      const next = i + 1 < end ? text.charCodeAt(i + 1) : SPACE;
      return next === SPACE || next === TAB || (flow && isFlowIndicator(next))
        ? 'a list item here'
        : undefined;
    }
    case HASH:
    case 0x25:
    case 0x40:
    case 0x60:
    case 0x3f:
    case COLON:
    case 0x2c:
    case 0x5b:
    case 0x5d:
    case 0x7b:
    case 0x7d:
      return `a value starting with ${text[i] ?? ''}`;
    default:
      return undefined;
  }
}

// Bounds on what the loader accepts. A hand-written moshproxy.yaml is a few KB
// and a few levels deep; one generated from an inventory of 20 000 hosts
// (scripts/gen-inventory.mjs) is 1.7 MB with 180 000 values, or 9.7 MB with
// 824 000 values when every host sets every field (about 1 s of CPU to load).
// These limits sit above that, and below what makes loading take seconds or
// exhausts memory. The full YAML parser (yaml) is slow (~0.5 µs a byte on a
// plain file, ~3 µs on adversarial input) and recurses once per nesting level
// (a caught overflow inside it can later abort Node in V8's regexp compiler),
// so it reads files up to `yamlBytes` only: a larger file must be plain YAML,
// which plain-yaml.ts reads in one pass without recursing over lines. Each
// check here is iterative, so no input can overflow it either.
import type { CST } from 'yaml';

export const LIMITS = {
  /** Any file. */
  bytes: 32 * 1024 * 1024,
  /** A file the full YAML parser reads (anchors, block scalars, ...); a larger one must be plain YAML. */
  yamlBytes: 256 * 1024,
  depth: 64,
  /** Values in the file as written: collections, scalars (keys too) and aliases. */
  values: 1_000_000,
  /** Values once aliases are expanded, in a file that has aliases. */
  expanded: 100_000,
} as const;

export interface Excess {
  /** Offset in the text, for line:column. */
  offset: number;
  message: string;
  hint: string;
}

const SMALLER = 'check that this is the config file';

export function tooManyValues(offset: number): Excess {
  return {
    offset,
    message: `the file holds more than ${LIMITS.values} values`,
    hint: `a moshproxy.yaml of 20 000 hosts holds about 200 000, or 800 000 with every field set; ${SMALLER}`,
  };
}

export function tooDeep(offset: number): Excess {
  return {
    offset,
    message: `lists and maps nest more than ${LIMITS.depth} levels deep here`,
    hint: `a moshproxy.yaml needs a few levels; ${SMALLER}`,
  };
}

/** Checks nesting and size on the parser's tokens, before anything recurses over them. */
export function checkTokens(tokens: readonly CST.Token[]): Excess | undefined {
  const stack: { token: CST.Token | null | undefined; depth: number }[] = tokens.map((token) => ({
    token,
    depth: 0,
  }));
  let values = 0;
  while (stack.length > 0) {
    const { token, depth } = stack.pop() ?? { token: undefined, depth: 0 };
    if (!token) continue;
    if (token.type === 'document') {
      stack.push({ token: token.value, depth });
      continue;
    }
    const isValue =
      token.type === 'scalar' ||
      token.type === 'alias' ||
      token.type === 'single-quoted-scalar' ||
      token.type === 'double-quoted-scalar' ||
      token.type === 'block-scalar' ||
      token.type === 'block-map' ||
      token.type === 'block-seq' ||
      token.type === 'flow-collection';
    if (isValue && ++values > LIMITS.values) return tooManyValues(token.offset);
    if (token.type !== 'block-map' && token.type !== 'block-seq' && token.type !== 'flow-collection')
      continue;
    if (depth + 1 > LIMITS.depth) return tooDeep(token.offset);
    for (const item of token.items) {
      if ('key' in item) stack.push({ token: item.key, depth: depth + 1 });
      stack.push({ token: item.value, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * What the data looks like with aliases expanded: each alias shares its
 * anchor's value, but every check after parsing walks it once per alias.
 */
export function checkExpanded(data: unknown): 'depth' | 'size' | undefined {
  const stack: { value: unknown; depth: number }[] = [{ value: data, depth: 0 }];
  let values = 0;
  while (stack.length > 0) {
    const { value, depth } = stack.pop() ?? { value: undefined, depth: 0 };
    if (++values > LIMITS.expanded) return 'size';
    if (typeof value !== 'object' || value === null) continue;
    if (depth + 1 > LIMITS.depth) return 'depth';
    for (const child of Object.values(value)) stack.push({ value: child, depth: depth + 1 });
  }
  return undefined;
}

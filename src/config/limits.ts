// Bounds on what the loader accepts. A real moshproxy.yaml is a few KB and a
// few levels deep; these limits sit far above that and far below what makes
// the YAML parser slow (~3 µs a byte on adversarial input), overflow the stack
// (the composer recurses once per nesting level, and a caught overflow inside
// it can later abort Node in V8's regexp compiler), or make later checks
// quadratic. Each check here is iterative, so no input can overflow it either.
import type { CST } from 'yaml';

export const LIMITS = {
  bytes: 256 * 1024,
  depth: 64,
  /** Values in the file as written: collections, scalars and aliases. */
  values: 10_000,
  /** Values once aliases are expanded, as the checks after parsing see them. */
  expanded: 100_000,
} as const;

export interface Excess {
  /** Offset in the text, for line:column. */
  offset: number;
  message: string;
  hint: string;
}

const SMALLER =
  'a moshproxy.yaml needs a few levels and a few hundred values; check that this is the config file';

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
    if (isValue && ++values > LIMITS.values) {
      return {
        offset: token.offset,
        message: `the file holds more than ${LIMITS.values} values`,
        hint: SMALLER,
      };
    }
    if (token.type !== 'block-map' && token.type !== 'block-seq' && token.type !== 'flow-collection')
      continue;
    if (depth + 1 > LIMITS.depth) {
      return {
        offset: token.offset,
        message: `lists and maps nest more than ${LIMITS.depth} levels deep here`,
        hint: SMALLER,
      };
    }
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

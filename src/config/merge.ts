// Later files win: maps merge key by key, anything else (scalars, lists such as
// `via`) is replaced whole, as in docker compose overrides. Origins follow the
// value, so an error in an overridden field points at the override file.
import type { Origin, Origins } from './source.js';
import { pointer } from './source.js';

export interface Merged {
  data: unknown;
  origins: Origins;
}

export function mergeSources(sources: readonly Merged[]): Merged {
  // One file is its own merge; copying where its 100 000 values came from would cost as much as reading them.
  if (sources.length === 1 && sources[0]) return { data: sources[0].data, origins: sources[0].origins };
  let data: unknown = undefined;
  const origins = new Map<string, Origin>();
  for (const s of sources) {
    data = mergeValue(data, s.data, '', s.origins, origins);
  }
  return { data, origins };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mergeValue(
  base: unknown,
  over: unknown,
  ptr: string,
  from: Origins,
  into: Map<string, Origin>,
): unknown {
  const origin = from.get(ptr);
  if (isPlainObject(base) && isPlainObject(over)) {
    if (origin && !into.has(ptr)) into.set(ptr, origin);
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = mergeValue(base[k], v, pointer(ptr, k), from, into);
    return out;
  }
  // Replaced whole: forget where the old value and its children came from.
  for (const k of [...into.keys()]) if (k === ptr || k.startsWith(`${ptr}/`)) into.delete(k);
  for (const [k, o] of from) if (k === ptr || k.startsWith(`${ptr}/`)) into.set(k, o);
  return over;
}

// The checks of `forward:` the schema cannot make: each entry must be a
// forward ssh would take (and moshctl can carry), and no two of one host may
// listen on the same port or path. Every problem points at its entry.
import type { Problem } from '../errors.js';
import { describePath } from './schema.js';
import { listenersClash, parseForward } from '../forward/spec.js';
import type { ForwardSpec } from '../forward/types.js';
import { forwardKinds } from './forwards.js';
import type { Position } from './source.js';
import { pointer } from './source.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Problems of `defaults.forward` and each `hosts.NAME.forward`. */
export function checkForwards(data: Obj, at: (ptr: string) => Position): Problem[] {
  const problems: Problem[] = [];
  const maps: string[] = ['/defaults'];
  if (isObj(data.hosts)) for (const name of Object.keys(data.hosts)) maps.push(pointer('/hosts', name));
  for (const parent of maps) {
    const forward = get(data, pointer(parent, 'forward'));
    if (!isObj(forward)) continue;
    const parsed: { spec: ForwardSpec; ptr: string }[] = [];
    for (const kind of forwardKinds) {
      const list = Object.hasOwn(forward, kind) ? forward[kind] : undefined;
      if (!Array.isArray(list)) continue;
      list.forEach((item, i) => {
        // Other types the schema reported.
        if (typeof item !== 'string' && typeof item !== 'number') return;
        const ptr = pointer(pointer(pointer(parent, 'forward'), kind), i);
        const r = parseForward(kind, String(item), '');
        if (!r.ok) {
          problems.push({ ...at(ptr), message: `${describePath(ptr)}: ${r.message}`, hint: r.hint });
          return;
        }
        const other = parsed.find((p) => listenersClash(p.spec, r.spec));
        if (other)
          problems.push({
            ...at(ptr),
            message: `${describePath(ptr)}: ${r.spec.text} listens where ${describePath(other.ptr)} (${other.spec.text}) does`,
            hint: 'give one of them another port or path',
          });
        parsed.push({ spec: r.spec, ptr });
      });
    }
  }
  return problems;
}

function get(data: unknown, ptr: string): unknown {
  let cur: unknown = data;
  for (const seg of ptr.split('/').slice(1)) {
    if (!isObj(cur)) return undefined;
    const key = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    cur = Object.hasOwn(cur, key) ? cur[key] : undefined;
  }
  return cur;
}

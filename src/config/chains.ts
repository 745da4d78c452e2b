// How a host is reached. `via: [a, b]` means client → a → b → host. The first
// hop's own `via` is followed too (that is how the client reaches it); later
// hops are reached through the hop before them, as with ssh's ProxyJump.

/** Each host's `via`; a Map, or lookups into the file's hosts (resolveChain asks only for its chain). */
export type ViaMap = Pick<ReadonlyMap<string, readonly string[]>, 'get' | 'has'>;

export type ChainResult =
  | { ok: true; chain: string[] }
  | { ok: false; reason: 'cycle'; path: string[] }
  | { ok: false; reason: 'unknown'; name: string }
  | { ok: false; reason: 'repeated'; name: string };

export function resolveChain(host: string, via: ViaMap): ChainResult {
  const seen: string[] = [host];
  const chain: string[] = [];
  let current = host;
  // Walk down first hops: host → via[0] → its via[0] … collecting each list's tail.
  const tails: string[][] = [];
  for (;;) {
    const list = via.get(current) ?? [];
    const first = list[0];
    if (first === undefined) break;
    if (!via.has(first)) return { ok: false, reason: 'unknown', name: first };
    if (seen.includes(first)) return { ok: false, reason: 'cycle', path: [...seen, first] };
    seen.push(first);
    tails.unshift([first, ...list.slice(1)]);
    current = first;
  }
  for (const t of tails) chain.push(...t);
  for (const name of chain) if (!via.has(name)) return { ok: false, reason: 'unknown', name };
  const repeated = chain.find((n, i) => chain.indexOf(n) !== i || n === host);
  if (repeated !== undefined) return { ok: false, reason: 'repeated', name: repeated };
  return { ok: true, chain };
}

/**
 * What resolveChain says of a host, without the chain. A host on a loop of
 * first hops shares the loop's hosts; `at` is its place among them.
 */
export type ChainCheck =
  | { ok: true }
  | { ok: false; reason: 'cycle'; loop?: { hosts: readonly string[]; at: number } }
  | { ok: false; reason: 'unknown'; name: string }
  | { ok: false; reason: 'repeated'; name: string };

const FINE: ChainCheck = { ok: true };
const INTO_CYCLE: ChainCheck = { ok: false, reason: 'cycle' };

/** A host on a loop: from it around the loop and back, as resolveChain's cycle path ends. */
export function cycleFrom(loop: { hosts: readonly string[]; at: number }): string[] {
  const { hosts, at } = loop;
  return [...hosts.slice(at), ...hosts.slice(0, at), hosts[at] ?? ''];
}

/**
 * resolveChain for every host at once, in time linear in the file (resolving
 * each chain alone is quadratic in a chain's length, and a big file may hold a
 * long one). First hops make trees, whose roots are reached directly, with
 * loops and names that are not declared beside them; each tree is walked
 * once, keeping the chain of the path so far: chain(h) = chain(first(h)) ++ via(h).
 */
export function checkChains(via: ReadonlyMap<string, readonly string[]>): Map<string, ChainCheck> {
  const out = new Map<string, ChainCheck>();
  const first = (h: string): string | undefined => via.get(h)?.[0];
  // 1. Where walking down first hops ends: a root, a name not declared, or a loop.
  const onPath = new Set<string>();
  const children = new Map<string, string[]>();
  const roots: string[] = [];
  for (const start of via.keys()) {
    if (out.has(start)) continue;
    const path: string[] = [];
    let cur = start;
    let end: ChainCheck | undefined; // undefined: a tree
    for (;;) {
      const done = out.get(cur);
      if (done) {
        if (!done.ok) end = done.reason === 'cycle' ? INTO_CYCLE : done;
        break;
      }
      if (onPath.has(cur)) {
        // A loop: the hosts from `cur` on are on it, those before lead into it.
        const at = path.indexOf(cur);
        const hosts = path.slice(at);
        hosts.forEach((h, i) => out.set(h, { ok: false, reason: 'cycle', loop: { hosts, at: i } }));
        path.length = at;
        end = INTO_CYCLE;
        break;
      }
      onPath.add(cur);
      path.push(cur);
      const f = first(cur);
      if (f === undefined) break;
      if (!via.has(f)) {
        end = { ok: false, reason: 'unknown', name: f };
        break;
      }
      cur = f;
    }
    onPath.clear();
    for (const h of path) {
      out.set(h, end ?? FINE);
      if (end) continue;
      const f = first(h);
      if (f === undefined) roots.push(h);
      else {
        const list = children.get(f);
        if (list) list.push(h);
        else children.set(f, [h]);
      }
    }
  }
  // 2. Down each tree, with the chain so far and the first names in it that are repeated or not declared.
  const chain: string[] = [];
  const firstAt = new Map<string, number>();
  type Step = { enter: string; dup: number; unknown: number } | { leave: number; added: string[] };
  const stack: Step[] = roots.map((root) => ({ enter: root, dup: Infinity, unknown: Infinity }));
  for (let step = stack.pop(); step; step = stack.pop()) {
    if ('leave' in step) {
      for (const n of step.added) firstAt.delete(n);
      chain.length = step.leave;
      continue;
    }
    const h = step.enter;
    let { dup, unknown } = step;
    const added: string[] = [];
    stack.push({ leave: chain.length, added });
    for (const n of via.get(h) ?? []) {
      if (firstAt.has(n)) dup = Math.min(dup, chain.length);
      else {
        firstAt.set(n, chain.length);
        added.push(n);
      }
      if (!via.has(n)) unknown = Math.min(unknown, chain.length);
      chain.push(n);
    }
    const repeated = Math.min(dup, firstAt.get(h) ?? Infinity);
    if (unknown !== Infinity) out.set(h, { ok: false, reason: 'unknown', name: chain[unknown] ?? '' });
    else if (repeated !== Infinity)
      out.set(h, { ok: false, reason: 'repeated', name: chain[repeated] ?? '' });
    for (const c of children.get(h) ?? []) stack.push({ enter: c, dup, unknown });
  }
  return out;
}

/**
 * Host → the hops whose relays forward to it, over every host whose chain is
 * sound: on a route, every host after the first gets UDP from a relay on the
 * one before it. In the order a walk of each route in turn would add them
 * (route(h) is route(first(h)) and then via(h)'s rest), each route walked once.
 */
export function relayedTo(
  names: readonly string[],
  via: ViaMap,
  checks: ReadonlyMap<string, ChainCheck>,
): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  const done = new Set<string>();
  const add = (from: string, to: string): void => {
    const set = out.get(to);
    if (set) set.add(from);
    else out.set(to, new Set([from]));
  };
  for (const name of names) {
    if (!checks.get(name)?.ok) continue;
    const todo: string[] = [];
    for (let h: string | undefined = name; h !== undefined && !done.has(h); h = via.get(h)?.[0]) todo.push(h);
    for (const h of todo.reverse()) {
      const route = [...(via.get(h) ?? []), h];
      route.forEach((to, i) => i > 0 && add(route[i - 1] ?? '', to));
      done.add(h);
    }
  }
  return out;
}

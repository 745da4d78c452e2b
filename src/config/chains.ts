// How a host is reached. `via: [a, b]` means client → a → b → host. The first
// hop's own `via` is followed too (that is how the client reaches it); later
// hops are reached through the hop before them, as with ssh's ProxyJump.

export type ViaMap = ReadonlyMap<string, readonly string[]>;

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

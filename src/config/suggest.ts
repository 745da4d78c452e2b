/** "Did you mean" for unknown keys, commands and host names: the closest candidate within a small distance. */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const l = c.toLowerCase();
    // The distance is at least the difference in length: most candidates are out of reach without computing it.
    if (Math.abs(l.length - w.length) >= bestDistance) continue;
    const d = distance(w, l, bestDistance);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, or `limit` as soon as it cannot be below it. */
function distance(a: string, b: string, limit: number): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let least = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      least = Math.min(least, cur[j] ?? 0);
    }
    // A row's least value never drops in the rows below it.
    if (least >= limit) return limit;
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

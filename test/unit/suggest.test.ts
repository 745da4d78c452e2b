// suggest() skips candidates that cannot be close enough (by length, or once a
// row of the distance table is out of reach); it must still pick what
// comparing with every candidate in full picks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { suggest } from '../../src/config/suggest.js';

function fullDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function everyCandidate(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = fullDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

describe('suggest', () => {
  it('picks what comparing with every candidate in full picks', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'A', '-', 'İ', 'ß'), maxLength: 12 });
    fc.assert(
      fc.property(word, fc.array(word, { maxLength: 8 }), (w, candidates) => {
        expect(suggest(w, candidates)).toBe(everyCandidate(w, candidates));
      }),
      { numRuns: 3000 },
    );
  });

  it('answers at once for a word of megabytes', () => {
    expect(suggest('x'.repeat(4_000_000), ['hosts', 'version', 'x'.repeat(10)])).toBeUndefined();
  });
});

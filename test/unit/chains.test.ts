// checkChains and relayedTo, which check every host's chain at once in linear
// time, against resolveChain run host by host (the definition), on random via
// lists; and on a long chain, which host by host takes quadratic time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkChains, cycleFrom, relayedTo, resolveChain, type ChainCheck } from '../../src/config/chains.js';
import { checkRules } from '../../src/config/rules.js';

const seed = Number(process.env.MOSHCTL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const scale = Number(process.env.MOSHCTL_FUZZ_SCALE ?? 1);

/** What resolveChain says, in checkChains' terms. */
function oneByOne(name: string, via: Map<string, string[]>): ChainCheck & { cyclePath?: string[] } {
  const r = resolveChain(name, via);
  if (r.ok) return { ok: true };
  if (r.reason !== 'cycle') return r;
  const cycle = r.path.slice(r.path.indexOf(r.path[r.path.length - 1] ?? ''));
  return { ok: false, reason: 'cycle', ...(cycle.includes(name) ? { cyclePath: cycle } : {}) };
}

function naiveRelayedTo(via: Map<string, string[]>): [string, string[]][] {
  const out = new Map<string, Set<string>>();
  for (const name of via.keys()) {
    const r = resolveChain(name, via);
    if (r.ok)
      [...r.chain, name].forEach((h, i, route) => {
        const from = route[i - 1];
        if (from !== undefined) out.set(h, (out.get(h) ?? new Set()).add(from));
      });
  }
  return [...out].map(([h, s]) => [h, [...s]]);
}

const NAMES = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
const graph = fc
  .tuple(
    fc.shuffledSubarray(NAMES, { minLength: 1 }),
    fc.array(fc.array(fc.constantFrom(...NAMES, 'x', 'y'), { maxLength: 3 }), {
      minLength: NAMES.length,
      maxLength: NAMES.length,
    }),
  )
  .map(([names, lists]) => new Map(names.map((n, i) => [n, lists[i] ?? []])));

describe(`checkChains and relayedTo (seed ${seed})`, () => {
  it(
    'say what resolveChain says of each host, on random via lists',
    () => {
      fc.assert(
        fc.property(graph, (via) => {
          const checks = checkChains(via);
          for (const name of via.keys()) {
            const c = checks.get(name);
            const { cyclePath, ...expected } = oneByOne(name, via);
            if (c && !c.ok && c.reason === 'cycle') {
              expect(c.loop && cycleFrom(c.loop)).toEqual(cyclePath);
              expect({ ok: c.ok, reason: c.reason }).toEqual(expected);
            } else expect(c).toEqual(expected);
          }
          const relayed = relayedTo([...via.keys()], via, checks);
          expect([...relayed].map(([h, s]) => [h, [...s]])).toEqual(naiveRelayedTo(via));
        }),
        { seed, numRuns: 2000 * scale },
      );
    },
    60_000 * scale,
  );

  it(
    'leave no chain unresolvable once the rules find nothing wrong (resolve.ts counts on it)',
    () => {
      fc.assert(
        fc.property(graph, (via) => {
          const hosts = Object.fromEntries([...via].map(([n, list]) => [n, { address: 'a', via: list }]));
          const problems = checkRules({ version: 1, hosts }, new Map(), { file: 'f', line: 1, column: 1 });
          if (problems.length === 0) for (const n of via.keys()) expect(resolveChain(n, via).ok).toBe(true);
        }),
        { seed, numRuns: 2000 * scale },
      );
    },
    60_000 * scale,
  );

  it('handles a chain of 100 000 hosts, and a loop of as many', () => {
    const n = 100_000;
    const chain = new Map(Array.from({ length: n }, (_, i) => [`h${i}`, i === 0 ? [] : [`h${i - 1}`]]));
    const checks = checkChains(chain);
    expect([...checks.values()].every((c) => c.ok)).toBe(true);
    expect(relayedTo([...chain.keys()], chain, checks).size).toBe(n - 1);
    chain.set('h0', [`h${n - 1}`]);
    const loop = checkChains(chain);
    expect([...loop.values()].every((c) => !c.ok && c.reason === 'cycle' && c.loop?.hosts.length === n)).toBe(
      true,
    );
    // A bound on hanging, not a speed test: a quadratic walk would not end for minutes.
  }, 60_000);
});

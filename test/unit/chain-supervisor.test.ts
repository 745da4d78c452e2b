// The supervisor of the kept chain with a fake keeper: it reconnects by
// itself once the session is kept, soon and then less often, tells every
// consumer of each new chain (and of the loss of the old one), lets a
// connection wait for the chain within a bound, and stops for good at the end.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ChainSupervisor, GIVE_UP_MS, type Keeper } from '../../src/execute/chain-supervisor.js';
import type { ChainConsumer } from '../../src/execute/kept-chain.js';
import type { RemoteChain } from '../../src/transport/types.js';

const names = new WeakMap<RemoteChain, string>();
const chainNamed = (n: number): RemoteChain => {
  const chain = { hostNames: ['gate', 'box'] } as unknown as RemoteChain;
  names.set(chain, `chain ${n}`);
  return chain;
};
const nameOf = (chain: RemoteChain): string => names.get(chain) ?? '?';

/** A keeper whose opens succeed or fail as the test says; it tells the supervisor as the real one does. */
class FakeKeeper implements Keeper {
  current: RemoteChain | undefined = chainNamed(0);
  whole = true;
  quiet = false;
  opens = 0;
  failNext = 0;
  /** What the supervisor returned for the last chain opened: its consumers' attaches settled. */
  attached: Promise<void> | undefined;
  sup!: ChainSupervisor;
  ensure(): Promise<RemoteChain> {
    if (this.whole && this.current) return Promise.resolve(this.current);
    if (this.unreachable) return Promise.reject(new Error('target: remembered as unreachable'));
    this.opens++;
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(new Error('gate: connect timed out'));
    }
    const chain = chainNamed(this.opens);
    this.current = chain;
    this.whole = true;
    this.attached = this.sup.opened(chain);
    return Promise.resolve(chain);
  }
  reaches(): boolean {
    return this.whole;
  }
  recheck(): Promise<void> {
    return Promise.resolve();
  }
  addressesChanged(): void {}
  /** A hop marked unreachable (teardown's memory) refuses every open until forgotten. */
  unreachable = false;
  forgetUnreachable(): void {
    this.unreachable = false;
  }
  /** The chain dropped (a roam): as the keeper's drop() or a hop's close event. */
  drop(): void {
    const chain = this.current;
    this.whole = false;
    this.sup.lost(chain, 'the connection to gate dropped');
  }
}

function consumer(name: string, failTimes = 0) {
  const seen: string[] = [];
  let fails = failTimes;
  const c: ChainConsumer = {
    name,
    host: 'box',
    attach: (chain) => {
      seen.push(`attach ${nameOf(chain)}`);
      if (fails-- > 0) return Promise.reject(new Error('port in use'));
      return Promise.resolve();
    },
    detach: (chain) => void seen.push(`detach ${nameOf(chain)}`),
    close: () => {
      seen.push('close');
      return Promise.resolve();
    },
  };
  return { c, seen };
}

function setup() {
  const keeper = new FakeKeeper();
  const sup = new ChainSupervisor(keeper, 'box');
  keeper.sup = sup;
  const trouble: string[] = [];
  const states: string[] = [];
  return { keeper, sup, trouble, states };
}

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('ChainSupervisor', () => {
  it('attaches a consumer at once, and after a loss opens a new chain itself and re-attaches it', async () => {
    const { keeper, sup, trouble, states } = setup();
    const a = consumer('-L 8080:localhost:80');
    await sup.add(a.c);
    sup.keep({
      onTrouble: (w, y) => trouble.push(`${w}: ${y}`),
      onState: (s) => states.push(JSON.stringify(s)),
    });
    expect(keeper.quiet).toBe(true);
    keeper.drop();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.seen).toEqual(['attach chain 0', 'detach chain 0', 'attach chain 1']);
    expect(sup.state).toEqual({ up: true, reconnects: 1, lastError: 'the connection to gate dropped' });
    expect(states.map((s) => JSON.parse(s) as { up: boolean }).map((s) => s.up)).toEqual([false, true]);
    expect(trouble).toEqual([]);
    await sup.stop();
    expect(a.seen.at(-1)).toBe('close');
    expect(keeper.quiet).toBe(false);
  });

  it('tells the keeper when the consumers are back on a new chain (its own remote work waits for that)', async () => {
    const { keeper, sup } = setup();
    let finish!: () => void;
    const slow: ChainConsumer = {
      name: 'tcp forwarder',
      host: 'box',
      attach: (chain) => (nameOf(chain) === 'chain 0' ? Promise.resolve() : new Promise((r) => (finish = r))),
    };
    await sup.add(slow);
    sup.keep();
    keeper.drop();
    await vi.advanceTimersByTimeAsync(1);
    let settled = false;
    void keeper.attached?.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(100);
    expect(settled).toBe(false);
    finish();
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
    await sup.stop();
  });

  it('tries again soon, then every second, and within a second of the network coming back', async () => {
    const { keeper, sup } = setup();
    sup.keep();
    keeper.failNext = 4;
    keeper.drop();
    // Tries at 0, 250, 750, 1750 ms (failing), then every second: the network is back at 2 s, the chain at 2.75 s.
    await vi.advanceTimersByTimeAsync(2_700);
    expect(keeper.opens).toBe(4);
    expect(keeper.whole).toBe(false);
    expect(sup.state.lastError).toBe('gate: connect timed out');
    await vi.advanceTimersByTimeAsync(100);
    expect(keeper.opens).toBe(5);
    expect(keeper.whole).toBe(true);
    await sup.stop();
  });

  it('asks again a hop a command over the half-dead chain marked unreachable (after a roam)', async () => {
    const { keeper, sup } = setup();
    sup.keep();
    keeper.unreachable = true;
    keeper.drop();
    await vi.advanceTimersByTimeAsync(1);
    expect(keeper.whole).toBe(true);
    await sup.stop();
  });

  it('stops trying after the bound, until something needs the chain', async () => {
    const { keeper, sup } = setup();
    sup.keep();
    keeper.failNext = Number.MAX_SAFE_INTEGER;
    keeper.drop();
    await vi.advanceTimersByTimeAsync(GIVE_UP_MS + 10_000);
    const tried = keeper.opens;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(keeper.opens).toBe(tried);
    // A connection through a forward needs it: one more try at once.
    keeper.failNext = 0;
    const chain = sup.whenUp('box', 5_000);
    await vi.advanceTimersByTimeAsync(1);
    await expect(chain).resolves.toBe(keeper.current);
    await sup.stop();
  });

  it('lets a connection wait for the chain within its bound, and says when it did not come', async () => {
    const { keeper, sup } = setup();
    sup.keep();
    await expect(sup.whenUp('box', 1_000)).resolves.toBe(keeper.current);
    keeper.failNext = Number.MAX_SAFE_INTEGER;
    keeper.drop();
    const late = sup.whenUp('box', 2_000);
    const rejected = expect(late).rejects.toThrow('the ssh chain did not come back within 2 s');
    await vi.advanceTimersByTimeAsync(2_100);
    await rejected;
    const ended = sup.whenUp('box', 60_000);
    const told = expect(ended).rejects.toThrow('the session ended');
    await sup.stop();
    await told;
  });

  it('tries a consumer again on the same chain for about a minute (an old session may still hold its port), then reports it', async () => {
    const { keeper, sup, trouble } = setup();
    const r = consumer('-R 9000:localhost:22', 2);
    const stubborn = consumer('agent', 100);
    sup.watch(r.c);
    sup.watch(stubborn.c);
    sup.keep({ onTrouble: (w, y) => trouble.push(`${w}: ${y}`) });
    keeper.drop();
    await vi.advanceTimersByTimeAsync(61_000);
    expect(r.seen).toEqual(['detach chain 0', 'attach chain 1', 'attach chain 1', 'attach chain 1']);
    // Once, then after 0.25, 1, 2, 4, 8, 15 and 30 s: then it waits for the next chain.
    expect(stubborn.seen.filter((x) => x === 'attach chain 1')).toHaveLength(8);
    expect(trouble).toEqual(['agent: could not attach to the ssh chain: port in use']);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(stubborn.seen.filter((x) => x === 'attach chain 1')).toHaveLength(8);
    await sup.stop();
  });

  it('a consumer that fails to attach during set-up is asked again (its step only warned)', async () => {
    const { sup } = setup();
    const r = consumer('-R 9000:localhost:22', 1);
    await expect(sup.add(r.c)).rejects.toThrow('port in use');
    await vi.advanceTimersByTimeAsync(300);
    expect(r.seen).toEqual(['attach chain 0', 'attach chain 0']);
    await sup.stop();
  });

  it('does nothing by itself before the session is kept (set-up fails on a drop instead)', async () => {
    const { keeper, sup } = setup();
    keeper.drop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(keeper.opens).toBe(0);
    await sup.stop();
  });
});

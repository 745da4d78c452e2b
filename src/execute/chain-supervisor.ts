// The one supervisor of the kept chain. While mosh-client runs, whatever lives
// on the ssh chain (the tcp transport's forwarder, port forwards, the
// forwarded agent, relay healing) is a consumer: when the chain is lost (a
// roam, a suspend, an outage) the supervisor opens a new one itself, quietly
// (nothing may prompt while mosh-client owns the terminal), soon at first and
// then less often, and tells every consumer "new chain" so it re-attaches.
// No consumer opens a chain of its own; one that sees its stream stall says so
// (suspect), and the supervisor decides.
import { watchLocalAddresses } from './address-watch.js';
import type { ChainKeeper } from './chain-keeper.js';

/** What the supervisor uses of the keeper (a fake one in unit tests). */
export type Keeper = Pick<
  ChainKeeper,
  'ensure' | 'current' | 'whole' | 'reaches' | 'recheck' | 'addressesChanged' | 'quiet' | 'forgetUnreachable'
>;
import type { ChainConsumer, KeptChain } from './kept-chain.js';
import type { RemoteChain } from '../transport/types.js';

/**
 * Between attempts to open the chain again: at once, then within a second
 * (a connection made meanwhile waits, and should go through about a second
 * after the network is back), every second for a minute, then every 5 s.
 */
const RETRY_MS = [0, 250, 500, 1_000];
const FAST_FOR_MS = 60_000;
const SLOW_RETRY_MS = 5_000;
/** The bound: after this long without a chain, tries stop until something needs one (or the address changes). */
export const GIVE_UP_MS = 30 * 60_000;
/**
 * A consumer that failed to attach tries again on the same chain, for about a
 * minute: after a roam the target's sshd may still hold a remote forward's
 * port for the dead connection, and its refusal gives no reason.
 */
const REATTACH_MS = [250, 1_000, 2_000, 4_000, 8_000, 15_000, 30_000];
/**
 * How often this machine's addresses are looked at while keeping: a roam is
 * seen within this. One look costs about 45 µs (getifaddrs), so 0.05 % of a core.
 */
const ADDRESS_POLL_MS = 100;

/** What status shows of the kept chain. */
export interface ChainState {
  up: boolean;
  reconnects: number;
  lastError?: string;
  /** When it went down (ISO 8601), while it is down. */
  since?: string;
}

export interface SupervisorEvents {
  /** A consumer could not attach, or a reconnect failed: said after mosh-client exits, and kept for status. */
  onTrouble?: (who: string, why: string) => void;
  /** The chain went down or came back. */
  onState?: (state: ChainState) => void;
}

interface Waiter {
  host: string;
  resolve: (chain: RemoteChain) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface Attached {
  chain: RemoteChain | undefined;
  /** A pending retry of attach on the same chain. */
  retry: NodeJS.Timeout | undefined;
}

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export class ChainSupervisor implements KeptChain {
  private readonly consumers = new Map<ChainConsumer, Attached>();
  private readonly waiters = new Set<Waiter>();
  private keeping = false;
  private closed = false;
  private retry: NodeJS.Timeout | undefined;
  private reconnecting = false;
  private attempt = 0;
  private downAt: number | undefined;
  private unwatch: (() => void) | undefined;
  private events: SupervisorEvents = {};
  readonly state: ChainState = { up: true, reconnects: 0 };

  /** `target`: the deepest host of the route, which every new chain reaches. */
  constructor(
    private readonly keeper: Keeper,
    private readonly target: string,
  ) {}

  /**
   * Adds a consumer: attached at once to the open chain (during set-up, a
   * failure to attach is the caller's: it rejects), and to every later one.
   */
  async add(consumer: ChainConsumer): Promise<void> {
    if (this.closed) throw new Error('bug: a consumer added after the session ended');
    const entry: Attached = { chain: undefined, retry: undefined };
    this.consumers.set(consumer, entry);
    const chain = await this.keeper.ensure(consumer.host);
    entry.chain = chain;
    try {
      await consumer.attach(chain);
    } catch (e) {
      // The caller says so (a warning, or a failed `up`); it is asked again meanwhile.
      this.retryLater(consumer, entry, chain, 0);
      throw e;
    }
  }

  /**
   * Adds a consumer already served by the open chain (relay healing): told
   * only of chains opened from now on.
   */
  watch(consumer: ChainConsumer): void {
    this.consumers.set(consumer, { chain: this.keeper.current, retry: undefined });
  }

  /**
   * From set-up's end to teardown: the chain is kept. Nothing prompts from
   * now on; a lost chain is opened again by the supervisor, and a change of
   * this machine's addresses (a roam) has the chain checked at once.
   */
  keep(events: SupervisorEvents = {}): void {
    this.events = events;
    this.keeping = true;
    this.keeper.quiet = true;
    this.unwatch = watchLocalAddresses(() => {
      this.keeper.addressesChanged();
      // A roam after a long outage: worth trying again even past the bound.
      this.downAt = this.downAt === undefined ? undefined : Date.now();
      this.suspect();
    }, ADDRESS_POLL_MS);
    if (!this.keeper.whole) this.lost(undefined, 'no chain when the session started');
  }

  /** The session ends: no more reconnects; waiters are told; consumers are closed (listeners, links). */
  async stop(): Promise<void> {
    this.keeping = false;
    this.closed = true;
    this.keeper.quiet = false;
    this.unwatch?.();
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    for (const w of [...this.waiters]) this.settle(w, new Error('the session ended'));
    const all = [...this.consumers.keys()].reverse();
    for (const [, entry] of this.consumers) if (entry.retry) clearTimeout(entry.retry);
    await Promise.all(all.map((c) => (c.close ? c.close().catch(() => undefined) : Promise.resolve())));
  }

  whenUp(host: string, timeoutMs: number): Promise<RemoteChain> {
    if (this.closed) return Promise.reject(new Error('the session ended'));
    const chain = this.keeper.current;
    if (chain && this.keeper.reaches(host)) return Promise.resolve(chain);
    // During set-up (or a command's own use) the keeper opens what is asked for.
    if (!this.keeping) return this.keeper.ensure(host, false);
    return new Promise<RemoteChain>((resolve, reject) => {
      const w: Waiter = {
        host,
        resolve,
        reject,
        timer: setTimeout(
          () => this.settle(w, new Error(`the ssh chain did not come back within ${timeoutMs / 1000} s`)),
          timeoutMs,
        ),
      };
      this.waiters.add(w);
      // Something needs the chain now: past the bound, or between two slow tries, try at once.
      if (!this.reconnecting) this.schedule(0);
    });
  }

  suspect(): void {
    if (!this.keeping) return;
    void this.keeper.recheck().then(() => {
      if (!this.keeper.whole && !this.reconnecting) this.schedule(0);
    });
  }

  /**
   * Told by the keeper: a chain is open (the first, or one opened after a loss).
   * Resolves once every consumer's first attach to it has settled.
   */
  opened(chain: RemoteChain): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.state.up) {
      this.state.up = true;
      this.state.reconnects++;
      delete this.state.since;
      this.events.onState?.({ ...this.state });
    }
    this.attempt = 0;
    this.downAt = undefined;
    for (const w of [...this.waiters]) if (chain.hostNames.includes(w.host)) this.settle(w, chain);
    // Consumers re-attach only while the session is kept: during set-up each step attaches its own.
    if (!this.keeping) return Promise.resolve();
    const attaching: Promise<void>[] = [];
    for (const [consumer, entry] of this.consumers) {
      if (entry.chain !== chain && chain.hostNames.includes(consumer.host))
        attaching.push(this.attach(consumer, entry, chain));
    }
    return Promise.all(attaching).then(() => undefined);
  }

  /** Told by the keeper: `chain` is gone (undefined: none was open). */
  lost(chain: RemoteChain | undefined, why?: string): void {
    for (const [consumer, entry] of this.consumers) {
      if (chain && entry.chain !== chain) continue;
      entry.chain = undefined;
      if (entry.retry) clearTimeout(entry.retry);
      entry.retry = undefined;
      if (chain) consumer.detach?.(chain);
    }
    if (!this.keeping) return;
    if (this.state.up) {
      this.state.up = false;
      this.state.since = new Date().toISOString();
      if (why) this.state.lastError = why;
      this.events.onState?.({ ...this.state });
    }
    this.downAt ??= Date.now();
    if (!this.reconnecting) this.schedule();
  }

  /** Resolves when this attempt settled, whatever its outcome (a failure is retried here). */
  private attach(consumer: ChainConsumer, entry: Attached, chain: RemoteChain, round = 0): Promise<void> {
    entry.chain = chain;
    entry.retry = undefined;
    return consumer.attach(chain).catch((e: unknown) => {
      if (entry.chain !== chain || this.closed) return;
      if (round + 1 > REATTACH_MS.length) {
        this.events.onTrouble?.(consumer.name, `could not attach to the ssh chain: ${message(e)}`);
        return;
      }
      this.retryLater(consumer, entry, chain, round);
    });
  }

  /** Attach again after REATTACH_MS[round], while `chain` is still the one open. */
  private retryLater(consumer: ChainConsumer, entry: Attached, chain: RemoteChain, round: number): void {
    const delay = REATTACH_MS[round];
    if (delay === undefined || this.closed) return;
    if (entry.retry) clearTimeout(entry.retry);
    entry.retry = setTimeout(() => {
      entry.retry = undefined;
      if (entry.chain === chain && this.keeper.current === chain && this.keeper.whole && !this.closed)
        void this.attach(consumer, entry, chain, round + 1);
    }, delay);
    entry.retry.unref();
  }

  private schedule(delay?: number): void {
    if (!this.keeping || this.reconnecting) return;
    const down = this.downAt === undefined ? 0 : Date.now() - this.downAt;
    // The bound: tries stop until a waiter or an address change asks again.
    if (delay === undefined && down > GIVE_UP_MS) return;
    const wait =
      delay ??
      (down > FAST_FOR_MS ? SLOW_RETRY_MS : (RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)] ?? 0));
    if (this.retry) {
      if (wait > 0) return;
      clearTimeout(this.retry);
    }
    this.retry = setTimeout(() => {
      this.retry = undefined;
      void this.reconnect();
    }, wait);
    this.retry.unref();
  }

  private async reconnect(): Promise<void> {
    if (!this.keeping || this.keeper.whole) return;
    this.reconnecting = true;
    try {
      // A hop that failed a moment ago (a command over a half-open chain right after
      // a roam marks it, for teardown's sake) may answer now: ask it again every time.
      this.keeper.forgetUnreachable();
      // Not abortable, nothing remembered as unreachable: a hop may be back at the next try.
      await this.keeper.ensure(this.target, false, false);
    } catch (e) {
      this.attempt++;
      this.state.lastError = message(e);
      this.events.onState?.({ ...this.state });
    } finally {
      this.reconnecting = false;
    }
    if (!this.keeper.whole) this.schedule();
  }

  private settle(w: Waiter, outcome: RemoteChain | Error): void {
    if (!this.waiters.delete(w)) return;
    clearTimeout(w.timer);
    if (outcome instanceof Error) w.reject(outcome);
    else w.resolve(outcome);
  }
}

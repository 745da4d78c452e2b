// transport auto coming back to UDP: while a session goes by tcp, when to
// probe the UDP path through its relays (every few seconds, and at once after
// this machine's addresses change: a roam is the likely moment UDP starts
// passing again), and when to stop trying (a path that answers probes but not
// mosh, time after time). TcpTunnel does the switching; this only keeps time.
import { watchLocalAddresses } from './address-watch.js';

/** Between probes while on tcp: the bound on how long UDP passes before the session sees it. */
export const PROBE_EVERY_MS = 2_000;
/** After failed returns the pause doubles, up to this. */
const PROBE_EVERY_MAX_MS = 60_000;
/** After an address change (or a relay restarted): probes at once and soon after, as routes settle. */
const SOON_MS = [0, 500, 1_500];
/** Probes unanswered this long: ask for the relays to be looked at (one may have died unseen). */
const STUCK_MS = 60_000;
/** Returns that failed in a row; then probes wait for an address change. */
const MAX_FAILURES = 3;

export interface ProbeScheduleOptions {
  everyMs?: number;
  /** Sends one probe. */
  probe: () => void;
  /** Probes went unanswered for a minute. */
  onStuck?: () => void;
}

export class ProbeSchedule {
  private readonly base: number;
  private every: number;
  private failures = 0;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private soonTimers: NodeJS.Timeout[] = [];
  private unwatch: (() => void) | undefined;
  private stuckSince = 0;

  constructor(private readonly o: ProbeScheduleOptions) {
    this.base = o.everyMs ?? PROBE_EVERY_MS;
    this.every = this.base;
  }

  /** How long between probes now. */
  get intervalMs(): number {
    return this.every;
  }

  /** Whether probes go out now (false after too many failed returns, until an address change). */
  get probing(): boolean {
    return this.running && this.failures < MAX_FAILURES;
  }

  /** The session goes by tcp: probe from now on. */
  start(): void {
    this.stop();
    this.running = true;
    this.stuckSince = Date.now();
    this.schedule();
    this.unwatch = watchLocalAddresses(() => {
      // A new network: what failed on the old one may work here.
      this.failures = 0;
      this.every = this.base;
      this.schedule();
      this.soon();
    });
  }

  /** No probes: the session tries UDP, is back on it, or ends. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    for (const t of this.soonTimers.splice(0)) clearTimeout(t);
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /** A return to UDP did not hold: probe half as often; after MAX_FAILURES in a row, not until the addresses change. */
  failed(): void {
    this.failures++;
    this.every = Math.min(this.every * 2, PROBE_EVERY_MAX_MS);
  }

  /** UDP carried the session for a good while: the next return starts afresh. */
  held(): void {
    this.failures = 0;
    this.every = this.base;
  }

  /** Probes now and twice soon after (an address change, a relay started again). */
  soon(): void {
    if (!this.running) return;
    for (const t of this.soonTimers.splice(0)) clearTimeout(t);
    for (const ms of SOON_MS) this.soonTimers.push(unref(setTimeout(() => this.once(), ms)));
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.failures >= MAX_FAILURES) return;
    this.timer = unref(
      setTimeout(() => {
        this.once();
        this.schedule();
      }, this.every),
    );
  }

  private once(): void {
    if (!this.running) return;
    this.o.probe();
    if (Date.now() - this.stuckSince < STUCK_MS) return;
    this.stuckSince = Date.now();
    this.o.onStuck?.();
  }
}

function unref(t: NodeJS.Timeout): NodeJS.Timeout {
  t.unref();
  return t;
}

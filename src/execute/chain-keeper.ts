// The one ssh chain a runner keeps: opened once, reused for every step and
// for teardown, and opened again when next needed after it dropped (it will
// when the client roams or sleeps). A hop that cannot be reached is
// remembered, so teardown does not wait for the same timeout once per process.
import type { SshHost } from '../config/types.js';
import { EnvError } from '../errors.js';
import { routeClient } from '../plan/route-client.js';
import type { ConnectChain, Prompter, RemoteChain } from '../transport/types.js';
import { isLocalAddress, localAddresses } from './address-watch.js';
import type { SessionReport } from '../remote/sshd-session.js';
import { SshdSessions } from './sshd-sessions.js';

/** A live connection runs `true` well within this; a dead one never does. */
const RECHECK_TIMEOUT_MS = 3_000;
/**
 * After a reconnect, the old connections' sessions are ended and the new ones
 * learned once the consumers are back on the new chain (the tcp forwarder,
 * forwards), or after this long: their remote shells would otherwise compete
 * with the forwarder's start for the hops' CPU, and the session waits on that.
 */
const SESSION_WORK_AFTER_MS = 1_000;

export interface ChainOptions {
  signal?: AbortSignal;
  /** Where login prompts go (passwords, OTP codes, passphrases); none in status and down. */
  prompter?: Prompter;
  /** MOSHCTL_SSH_CONFIG: `ssh -F FILE` for the openssh client. */
  sshConfigFile?: string;
  /** Wraps every chain opened, e.g. to log each remote command (`--debug`). */
  wrapChain?: (chain: RemoteChain) => RemoteChain;
  /** The one host (the target) that may be asked to forward the agent (ConnectOptions.agentFor). */
  agentFor?: string;
  /** Hosts whose set-up command says its connection's session process (SshdSessions' constructor). */
  sessionsFromSetup?: readonly string[];
}

/** What the keeper tells its owner: a chain opened; a host's connection dropped; a chain is gone for good. */
export interface ChainEvents {
  /** May return when the chain's consumers are attached to it (or gave up for now). */
  onChainOpened?: (chain: RemoteChain) => void | Promise<void>;
  onHostDropped?: (host: string) => void;
  onChainLost?: (chain: RemoteChain, why?: string) => void;
}

async function transport(route: readonly SshHost[]): Promise<ConnectChain> {
  if (routeClient(route) === 'openssh') return (await import('../openssh/connect.js')).connectOpenSshChain;
  return (await import('../ssh/connect.js')).connectChain;
}

export class ChainKeeper {
  private chain: RemoteChain | undefined;
  /** How many hosts of the route the open chain reaches; 0 when none is open or it dropped. */
  private reach = 0;
  /** An open in progress: teardown asks for several hosts at once, and they must share one chain. */
  private opening: Promise<RemoteChain> | undefined;
  /** Hosts from this index on could not be reached; asking again would only wait for the same timeout. */
  private unreachableFrom: { index: number; error: unknown } | undefined;
  /** While connect() runs: the chain so far, for steps on the hops already open. */
  private partial: { chain: RemoteChain; reach: number } | undefined;
  /** The sshd process of each connection, so those of dead connections can be ended (a roam). */
  private readonly sshd: SshdSessions;
  /** Whether connect() opened the first chain; later chains learn their sshd sessions at once. */
  private connected = false;
  /** This machine's addresses when the open chain was opened. */
  private openedFrom = '';
  /** This machine's addresses changed, and the chain has not answered since. */
  private suspect = false;
  /** After a reconnect: the old sessions' ending and the new ones' learning, not yet started (sessionWorkAfter). */
  private pendingSessionWork: (() => void) | undefined;
  /** While mosh-client owns the terminal nothing may prompt: a reconnect goes without. */
  quiet = false;

  /** `route`: every host of the session, client side first, target last. */
  constructor(
    private readonly route: readonly SshHost[],
    private readonly opts: ChainOptions = {},
    private readonly events: ChainEvents = {},
  ) {
    this.sshd = new SshdSessions(opts.sessionsFromSetup);
  }

  /** A set-up command over `chain` said (or did not say) `host`'s session process: see SshdSessions.tell. */
  tellSession(chain: RemoteChain, host: string, report: SessionReport | undefined): void {
    this.sshd.tell(chain, host, report);
  }

  /**
   * Opens the chain through the whole route; `onReady` is told each host as it
   * is open, and ensure() hands out the partial chain for those meanwhile.
   */
  async connect(onReady?: (host: string) => void): Promise<RemoteChain> {
    const opened = this.open(this.route.length, true, (chain, hops) => {
      this.partial = { chain, reach: hops };
      const host = this.route[hops - 1];
      if (host) onReady?.(host.name);
    });
    this.opening = opened;
    try {
      const chain = await opened;
      void this.events.onChainOpened?.(chain);
      // Learnt now, while set-up runs: a roam right after mosh-client starts must
      // find them known, or the old connections' sessions outlive it.
      this.sshd.learn(chain);
      return chain;
    } catch (e) {
      // Steps that ran on the hops before the failed one are stopped over a chain that ends before it.
      this.markUnreachable(e, this.partial?.reach ?? 0);
      throw e;
    } finally {
      this.opening = undefined;
      this.partial = undefined;
    }
  }

  /**
   * A chain that reaches `host`, opened (again) if needed; `abortable` for
   * setup steps, not teardown; `remember`: a hop that cannot be reached is not
   * tried again (teardown must not wait for the same timeout once per process).
   */
  async ensure(host: string, abortable = true, remember = true): Promise<RemoteChain> {
    const index = this.indexOf(host);
    if (this.partial && this.partial.reach > index) return this.partial.chain;
    while (this.opening) await this.opening.catch(() => undefined);
    if (this.chain && this.reach > index) return this.chain;
    if (this.unreachableFrom && index >= this.unreachableFrom.index) throw this.unreachableFrom.error;
    // Open as far as the route goes (short of a hop known to be unreachable, which
    // would only cost its timeout again), so a later request for a deeper host reuses it.
    this.opening = this.open(this.unreachableFrom?.index ?? this.route.length, abortable);
    try {
      return await this.opening;
    } catch (e) {
      const failed = remember ? this.markUnreachable(e) : -1;
      // The full route failed (a host behind is gone): settle for reaching this host.
      if (index + 1 === this.route.length || failed <= index) throw e;
      this.opening = this.open(index + 1, abortable);
      return await this.opening;
    } finally {
      this.opening = undefined;
    }
  }

  /** Whether the open chain already reaches `host` (a command on it may find it dead after a roam). */
  reaches(host: string): boolean {
    return this.chain !== undefined && this.reach > this.indexOf(host);
  }

  /** The open chain, when one is open (it may have just dropped: see reaches()). */
  get current(): RemoteChain | undefined {
    return this.chain;
  }

  /** The route reached the last time this was asked: the open chain reaches the target and none of it dropped. */
  get whole(): boolean {
    return this.chain !== undefined && this.reach === this.route.length;
  }

  /** What could not be reached during the session may be back: the next ensure() tries again. */
  forgetUnreachable(): void {
    this.unreachableFrom = undefined;
  }

  /** This machine's addresses changed: the chain is suspect until it answers. */
  addressesChanged(): void {
    this.suspect = true;
  }

  /**
   * Drops the chain if this machine's addresses changed since it was opened
   * (even too briefly for the watcher to see) and it has not answered since:
   * after a roam it is dead, and commands over it would only wait out their timeouts.
   */
  dropIfMoved(): void {
    if (this.chain && (this.suspect || localAddresses() !== this.openedFrom)) {
      this.suspect = false;
      this.drop();
    }
  }

  /**
   * After an address change (a roam), or when a consumer saw its stream stall:
   * a chain that no longer answers is dropped at once, instead of waiting 45 s
   * for keepalives; the supervisor opens the next one.
   */
  async recheck(): Promise<void> {
    const chain = this.chain;
    const first = this.route[0];
    if (!first) return;
    // The address it left from is gone: dead for sure, no probe to wait out.
    if (chain?.localAddress && !isLocalAddress(chain.localAddress)) {
      if (this.chain === chain) this.drop();
    } else if (chain) {
      try {
        await chain.exec(first.name, 'true', { timeoutMs: RECHECK_TIMEOUT_MS });
        if (this.chain === chain) {
          // It answered after the change: the change did not concern it.
          this.suspect = false;
          this.openedFrom = localAddresses();
        }
        return;
      } catch {
        if (this.chain === chain) this.drop();
      }
    }
  }

  /** Drops the open chain without a goodbye (its network path is gone); the next ensure() opens another. */
  drop(): void {
    const chain = this.chain;
    this.chain = undefined;
    this.reach = 0;
    if (!chain) return;
    this.sshd.lost(chain, chain.hostNames);
    this.events.onChainLost?.(
      chain,
      'this machine moved (its address changed) or the chain stopped answering',
    );
    chain.destroy();
  }

  /** The end: old sshd sessions being ended, then the chain. */
  async close(): Promise<void> {
    this.pendingSessionWork?.();
    await this.sshd.settled();
    await this.closeChain();
  }

  indexOf(host: string): number {
    const index = this.route.findIndex((h) => h.name === host);
    if (index < 0) throw new Error(`bug: ${host} is not on this session's route`);
    return index;
  }

  private async closeChain(): Promise<void> {
    const chain = this.chain;
    this.chain = undefined;
    this.reach = 0;
    await chain?.close();
  }

  /**
   * Ends the old connections' sessions and learns the new ones' once `attached`
   * settles (bounded), or at once when the session ends first (close()).
   */
  private sessionWorkAfter(chain: RemoteChain, attached: void | Promise<void>): void {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, SESSION_WORK_AFTER_MS)));
    const run = (): void => {
      clearTimeout(timer);
      if (this.pendingSessionWork !== run) return;
      this.pendingSessionWork = undefined;
      // A chain lost meanwhile cannot be asked; its orphans wait for the next one.
      if (this.chain !== chain) return;
      this.sshd.endOrphans(chain);
      this.sshd.learn(chain);
    };
    this.pendingSessionWork = run;
    void Promise.race([Promise.resolve(attached).catch(() => undefined), late]).then(run);
  }

  /**
   * Remembers the host a connect failed at, so it is not tried again; returns
   * its index, -1 when the error names none. A hop whose connection dropped
   * while the next one logged in (`opened`: how many were open) may answer a
   * new connection: the one that was logging in is remembered instead, so
   * teardown reaches the hops before it without logging in there again.
   */
  private markUnreachable(e: unknown, opened?: number): number {
    if (!(e instanceof EnvError)) return -1;
    const failed =
      e.where.fault === 'dropped' ? (opened ?? -1) : this.route.findIndex((h) => h.name === e.where.host);
    if (failed >= 0) this.unreachableFrom = { index: failed, error: e };
    return failed;
  }

  private async open(
    hops: number,
    abortable = true,
    onReady?: (chain: RemoteChain, hops: number) => void,
  ): Promise<RemoteChain> {
    await this.closeChain();
    const connectChain = await transport(this.route);
    // One wrapper per chain: the one onReady hands out is the one that is returned.
    const wrapped = new WeakMap<RemoteChain, RemoteChain>();
    const wrap = (c: RemoteChain): RemoteChain => {
      let w = wrapped.get(c);
      if (!w) wrapped.set(c, (w = this.opts.wrapChain?.(c) ?? c));
      return w;
    };
    const chain = wrap(
      await connectChain(this.route.slice(0, hops), {
        ...(onReady ? { onReady: (c: RemoteChain, n: number) => onReady(wrap(c), n) } : {}),
        ...(this.opts.signal && abortable ? { signal: this.opts.signal } : {}),
        ...(this.opts.prompter && !this.quiet ? { prompter: this.opts.prompter } : {}),
        ...(this.opts.sshConfigFile ? { sshConfigFile: this.opts.sshConfigFile } : {}),
        ...(this.opts.agentFor ? { agentFor: this.opts.agentFor } : {}),
      }),
    );
    this.chain = chain;
    this.reach = hops;
    this.openedFrom = localAddresses();
    // Once any hop drops, everything behind it is gone too: reopen on next use.
    chain.onClose((host, error) => {
      if (this.chain === chain) this.reach = 0;
      this.events.onHostDropped?.(host);
      this.sshd.lost(chain, [host]);
      this.events.onChainLost?.(
        chain,
        `the connection to ${host} dropped${error ? `: ${error.message}` : ''}`,
      );
    });
    const reconnect = this.connected;
    this.connected = true;
    // A partial chain (connect() hands those out hop by hop) is announced once whole.
    const attached = onReady ? undefined : this.events.onChainOpened?.(chain);
    if (reconnect) this.sessionWorkAfter(chain, attached);
    return chain;
  }
}

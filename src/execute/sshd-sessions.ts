// Which server process serves each of the runner's connections, and ending
// those of connections that died. A roam or a suspend kills a connection on
// the client's side only: the hop's sshd (or Dropbear) never hears of it and
// keeps the session (facts.md). The runner learns each hop's session process
// once the chain works (remote/sshd-session.ts: the parent of the login shell,
// whatever the server), and when it opens a new chain after an old one died,
// it ends the old sessions over the new one. Best effort: a failure here
// never fails a step.
import {
  endSshdCommand,
  ownSshdCommand,
  parseEndSshd,
  parseOwnSshd,
  type SessionReport,
  type SshdSession,
} from '../remote/sshd-session.js';
import type { RemoteChain } from '../transport/types.js';

const EXEC_TIMEOUT_MS = 10_000;

interface Owner {
  chain: RemoteChain;
  sessions: Map<string, SshdSession>;
  dead: Set<string>;
  /** Hosts whose set-up command has not said its session yet (see tell). */
  awaiting: Set<string>;
}

export class SshdSessions {
  /** The chain whose sessions are being learned, and what is known of them by host. */
  private owner: Owner | undefined;
  private orphans: { host: string; session: SshdSession }[] = [];
  private cleanup: Promise<void> = Promise.resolve();
  /** How many old sessions were ended, for tests and `--debug`. */
  ended = 0;
  /** Hosts of the first chain whose set-up command says the session (tell): learn() does not ask them. */
  private fromSetup: Set<string>;
  /** What set-up commands said before learn() took their chain. */
  private readonly early = new Map<string, { chain: RemoteChain; report: SessionReport | undefined }>();

  /**
   * `fromSetup`: hosts where a set-up command runs anyway over the first chain
   * (mosh-server on the target, a relay on a bastion) and says the session
   * process too (sshd-session.ts withSessionReport): each login shell is an
   * exec the hop pays for, and those of a separate learning exec per hop
   * competed with set-up's own for the hops' CPU, mosh-server's start among them.
   */
  constructor(fromSetup: readonly string[] = []) {
    this.fromSetup = new Set(fromSetup);
  }

  /** Learns, in the background, the server's session process behind each hop of `chain`. */
  learn(chain: RemoteChain): void {
    const owner: Owner = { chain, sessions: new Map(), dead: new Set(), awaiting: new Set() };
    this.owner = owner;
    const told = this.fromSetup;
    // Only the first chain has set-up commands; a later one is asked in full.
    this.fromSetup = new Set();
    for (const host of chain.hostNames) {
      if (!told.has(host)) {
        this.ask(owner, host);
        continue;
      }
      const early = this.early.get(host);
      if (early?.chain !== chain) owner.awaiting.add(host);
      else if (early.report === undefined) this.ask(owner, host);
      else if (early.report !== 'none') this.keep(owner, host, early.report);
    }
    this.early.clear();
  }

  /**
   * A set-up command over `chain` said `host`'s session process (`none`: the
   * host cannot say), or ended without saying it (undefined): then it is asked.
   * Only for hosts given to the constructor; anything else is ignored.
   */
  tell(chain: RemoteChain, host: string, report: SessionReport | undefined): void {
    const owner = this.owner;
    if (owner?.chain !== chain) {
      // Before learn(): kept for it, unless the first chain was taken already.
      if (this.fromSetup.has(host) && !this.early.has(host)) this.early.set(host, { chain, report });
      return;
    }
    if (!owner.awaiting.delete(host)) return;
    if (report === undefined) this.ask(owner, host);
    else if (report !== 'none') this.keep(owner, host, report);
  }

  private ask(owner: Owner, host: string): void {
    owner.chain
      .exec(host, ownSshdCommand(), { timeoutMs: EXEC_TIMEOUT_MS })
      .then((r) => {
        const session = parseOwnSshd(r.stdout);
        if (session) this.keep(owner, host, session);
      })
      .catch(() => undefined);
  }

  private keep(owner: Owner, host: string, session: SshdSession): void {
    // The connection may have died while the answer was on its way.
    if (owner.dead.has(host) || this.owner !== owner) this.orphans.push({ host, session });
    else owner.sessions.set(host, session);
  }

  /** The connections to `hosts` of `chain` are dead: their sessions are orphans now. */
  lost(chain: RemoteChain, hosts: readonly string[]): void {
    const owner = this.owner;
    if (owner?.chain !== chain) return;
    for (const host of hosts) {
      owner.dead.add(host);
      const session = owner.sessions.get(host);
      if (!session) continue;
      owner.sessions.delete(host);
      this.orphans.push({ host, session });
    }
  }

  /** Ends, in the background, the orphans on hosts `chain` reaches; `settled()` waits for it. */
  endOrphans(chain: RemoteChain): void {
    const todo = this.orphans.filter((o) => chain.hostNames.includes(o.host));
    if (todo.length === 0) return;
    this.orphans = this.orphans.filter((o) => !todo.includes(o));
    const byHost = new Map<string, SshdSession[]>();
    for (const o of todo) byHost.set(o.host, [...(byHost.get(o.host) ?? []), o.session]);
    const runs = [...byHost].map(async ([host, sessions]) => {
      try {
        const r = await chain.exec(host, endSshdCommand(sessions), { timeoutMs: EXEC_TIMEOUT_MS });
        for (const outcome of parseEndSshd(r.stdout).values()) if (outcome === 'ended') this.ended++;
      } catch {
        // That hop is unreachable again: try over the next chain.
        this.orphans.push(...sessions.map((session) => ({ host, session })));
      }
    });
    this.cleanup = Promise.all([this.cleanup, ...runs]).then(() => undefined);
  }

  settled(): Promise<void> {
    return this.cleanup;
  }
}

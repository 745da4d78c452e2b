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
  type SshdSession,
} from '../remote/sshd-session.js';
import type { RemoteChain } from '../transport/types.js';

const EXEC_TIMEOUT_MS = 10_000;

export class SshdSessions {
  /** The chain whose sessions are being learned, and what is known of them by host. */
  private owner: { chain: RemoteChain; sessions: Map<string, SshdSession>; dead: Set<string> } | undefined;
  private orphans: { host: string; session: SshdSession }[] = [];
  private cleanup: Promise<void> = Promise.resolve();
  /** How many old sessions were ended, for tests and `--debug`. */
  ended = 0;

  /** Learns, in the background, the server's session process behind each hop of `chain`. */
  learn(chain: RemoteChain): void {
    const owner = { chain, sessions: new Map<string, SshdSession>(), dead: new Set<string>() };
    this.owner = owner;
    for (const host of chain.hostNames) {
      chain
        .exec(host, ownSshdCommand(), { timeoutMs: EXEC_TIMEOUT_MS })
        .then((r) => {
          const session = parseOwnSshd(r.stdout);
          if (!session) return;
          // The connection may have died while the answer was on its way.
          if (owner.dead.has(host) || this.owner !== owner) this.orphans.push({ host, session });
          else owner.sessions.set(host, session);
        })
        .catch(() => undefined);
    }
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

// The seam between the one supervisor of the kept ssh chain and what lives
// on it for the whole session: the tcp transport's forwarder, port forwards,
// the forwarded agent, relay healing. Each is a consumer: told "here is a
// (new) chain" and re-attaches; none reconnects on its own.
import type { RemoteChain } from '../transport/types.js';

export interface ChainConsumer {
  /** For messages and --debug: `tcp forwarder`, `-L 8080:localhost:80`, `agent`. */
  readonly name: string;
  /** The deepest host of the route it uses (the target for most). */
  readonly host: string;
  /**
   * Called with the chain open when the consumer is added, and again with each
   * new chain after one was lost (a roam, an outage). A rejection is reported
   * by the supervisor (as trouble, after mosh-client exits) and the consumer is
   * called again with the next chain; it is never thrown into the session.
   */
  attach(chain: RemoteChain): Promise<void>;
  /** The chain last attached is gone: what runs over it is dead even if it has not said so. */
  detach?(chain: RemoteChain): void;
  /** The session ends: stop for good (listeners closed, remote links removed where reachable). */
  close?(): Promise<void>;
}

/** What consumers see of the supervisor. */
export interface KeptChain {
  /**
   * The open chain that reaches `host`, or the next one opened within
   * `timeoutMs` (a connection made during an outage waits for it). Rejects
   * when none comes in time or the session ends.
   */
  whenUp(host: string, timeoutMs: number): Promise<RemoteChain>;
  /**
   * A consumer saw its stream stall or break (the chain may be dead without
   * knowing it): check the chain now rather than waiting for keepalives.
   */
  suspect(): void;
}

// -R kept for a whole session: the target's sshd listens only as long as the
// connection that asked, so each new chain asks again. Between two chains
// nothing listens on the target (programs there see "connection refused"),
// as with ssh reconnecting by hand.
import { EnvError } from '../../errors.js';
import type { ChainConsumer } from '../kept-chain.js';
import { hostPort } from '../../host-port.js';
import type { RemoteChain, RemoteForwardEvents } from '../../transport/types.js';
import type { Endpoint, ForwardSpec, ForwardStatus } from '../../forward/types.js';

export interface RemoteForwardOptions {
  /** Called on every change of status(); the owner throttles (the record is saved at most every 0.5 s). */
  onChange?: () => void;
}

export class RemoteForward implements ChainConsumer {
  readonly name: string;
  private readonly to: Endpoint;
  /** The chain the forward was last asked on; events of older chains are ignored. */
  private chain: RemoteChain | undefined;
  private listening = false;
  private port: number | undefined;
  private open = 0;
  private counts = { total: 0, broken: 0, refused: 0 };
  private lastError: string | undefined;
  private closed = false;

  /** `host`: the target, whose sshd listens. */
  constructor(
    readonly spec: ForwardSpec,
    readonly host: string,
    private readonly opts: RemoteForwardOptions = {},
  ) {
    if (spec.kind !== 'remote' || !spec.to)
      throw new Error(`bug: ${spec.text} is not a remote forward with a destination`);
    this.name = spec.text;
    this.to = spec.to;
  }

  /**
   * Where the target's sshd is asked to listen: no address is `localhost`, as
   * ssh asks. Port 0 is the target's choice the first time, and that same port
   * on later chains, so programs on the target keep finding it after a roam.
   */
  at(stable = true): { host: string; port: number } | { path: string } {
    const l = this.spec.listen;
    if ('path' in l) return { path: l.path };
    return { host: l.host ?? 'localhost', port: l.port === 0 && stable ? (this.port ?? 0) : l.port };
  }

  /**
   * Asks the new chain's target to listen; rejects with its refusal. The
   * supervisor asks again for a while: after a roam the target's sshd may
   * still hold the port for the connection that died, and says no more than "refused".
   */
  async attach(chain: RemoteChain): Promise<void> {
    if (this.closed) return;
    if (this.chain !== chain) {
      this.chain = chain;
      this.listening = false;
      this.open = 0;
    }
    await this.ask(chain);
  }

  private async ask(chain: RemoteChain): Promise<void> {
    try {
      let port: number | undefined;
      try {
        ({ port } = await chain.remoteForward(this.host, this.at(), this.to, this.events(chain)));
      } catch (e) {
        // The port the target chose before is taken now: let it choose again.
        if (this.chain !== chain || JSON.stringify(this.at()) === JSON.stringify(this.at(false))) throw e;
        ({ port } = await chain.remoteForward(this.host, this.at(false), this.to, this.events(chain)));
      }
      if (this.chain !== chain || this.closed) return;
      this.listening = true;
      if (port !== undefined) this.port = port;
      this.lastError = undefined;
    } catch (e) {
      if (this.chain !== chain) return;
      const why = e instanceof Error ? e.message : String(e);
      this.lastError = why;
      throw new EnvError(
        `${this.spec.text} (${this.spec.source}): ${this.host} refused to listen at ${this.where()}: ${why}`,
        `the target's sshd may forbid it (AllowTcpForwarding, PermitListen, GatewayPorts for an address other than loopback), or something there already listens at ${this.where()}`,
        { host: this.host, step: 'port-forward' },
        { cause: e },
      );
    } finally {
      this.changed();
    }
  }

  /** The chain is gone, and the target's listener with it; connections it carried are broken. */
  detach(chain: RemoteChain): void {
    if (chain !== this.chain) return;
    this.chain = undefined;
    this.listening = false;
    this.counts.broken += this.open;
    this.open = 0;
    this.changed();
  }

  /** Nothing to cancel: the listener goes with the chain, which the supervisor closes. */
  close(): Promise<void> {
    this.closed = true;
    this.chain = undefined;
    this.listening = false;
    this.open = 0;
    this.changed();
    return Promise.resolve();
  }

  status(): ForwardStatus {
    return {
      text: this.spec.text,
      listening: this.listening,
      ...(this.port !== undefined ? { port: this.port } : {}),
      open: this.open,
      ...this.counts,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** Counters fed by this chain only: a late event of a chain already detached changes nothing. */
  private events(chain: RemoteChain): RemoteForwardEvents {
    const mine = (): boolean => this.chain === chain && !this.closed;
    return {
      onConnection: () => {
        if (!mine()) return;
        this.open++;
        this.counts.total++;
        this.changed();
      },
      onClosed: (broken) => {
        if (!mine()) return;
        this.open = Math.max(0, this.open - 1);
        if (broken) this.counts.broken++;
        this.changed();
      },
      onError: (why) => {
        if (!mine()) return;
        this.counts.total++;
        this.counts.refused++;
        this.lastError = why;
        this.changed();
      },
    };
  }

  private where(): string {
    const at = this.at();
    return 'path' in at ? at.path : hostPort(at.host, at.port);
  }

  private changed(): void {
    this.opts.onChange?.();
  }
}

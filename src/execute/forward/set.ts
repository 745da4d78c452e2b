// A session's forwards and agent link as one thing for the integrator: the
// consumers to hand the supervisor, the listeners bound before mosh-client
// starts, one throttled status callback for the session record, one close.
// This folder holds what uses sockets and chains; the pure parts (SOCKS
// parsing, the agent's remote scripts) are in src/forward/, whose types
// transport/ and plan/ import, so nothing there may import them back.
import { EnvError } from '../../errors.js';
import type { ChainConsumer, KeptChain } from '../kept-chain.js';
import type { AgentStep, PortForwardStep } from '../../plan/types.js';
import { AgentLink, type AgentLinkOptions, type AgentStatus } from './agent.js';
import { LocalForward, type LocalForwardOptions } from './local.js';
import { RemoteForward, type RemoteForwardOptions } from './remote.js';
import type { ForwardStatus } from '../../forward/types.js';

/** The record is rewritten at most this often however busy the forwards are (a file write each time). */
export const STATUS_THROTTLE_MS = 500;

export interface ForwardSetStatus {
  forwards: ForwardStatus[];
  agent?: AgentStatus;
}

export interface ForwardSetOptions {
  kept: KeptChain;
  /** Told at once on a first change, then at most every throttleMs; close() tells the last state at once. */
  onChange?: (status: ForwardSetStatus) => void;
  /** STATUS_THROTTLE_MS unless set. */
  throttleMs?: number;
  local?: Omit<LocalForwardOptions, 'onChange'>;
  remote?: Omit<RemoteForwardOptions, 'onChange'>;
  agent?: Omit<AgentLinkOptions, 'onChange'>;
}

export class ForwardSet {
  /** For the supervisor, in the order of the plan's steps. */
  readonly consumers: ChainConsumer[] = [];
  private readonly forwards: (LocalForward | RemoteForward)[] = [];
  private readonly agent: AgentLink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  private closed = false;

  constructor(
    steps: readonly (PortForwardStep | AgentStep)[],
    private readonly opts: ForwardSetOptions,
  ) {
    const onChange = (): void => this.changed();
    let agent: AgentLink | undefined;
    for (const step of steps) {
      if (step.kind === 'agent') {
        if (agent) throw new Error('bug: a plan with two agent steps');
        agent = new AgentLink(step, { ...opts.agent, onChange });
        this.consumers.push(agent);
        continue;
      }
      const f =
        step.spec.kind === 'remote'
          ? new RemoteForward(step.spec, step.host, { ...opts.remote, onChange })
          : new LocalForward(step.spec, step.host, opts.kept, { ...opts.local, onChange });
      this.forwards.push(f);
      this.consumers.push(f);
    }
    this.agent = agent;
  }

  /**
   * Binds every local and dynamic listener, before the chain is handed over:
   * all or none. Every bind that failed is named, so one `up` shows them all.
   */
  async start(): Promise<void> {
    const local = this.forwards.filter((f): f is LocalForward => f instanceof LocalForward);
    const results = await Promise.allSettled(local.map((f) => f.start()));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (failed.length === 0) return;
    await Promise.allSettled(local.map((f) => f.close()));
    const first = failed[0];
    if (failed.length === 1) throw first;
    const errors = failed.map((e) => (e instanceof EnvError ? e : new EnvError(String(e), '')));
    throw new EnvError(
      errors.map((e) => e.message).join('\n'),
      [...new Set(errors.map((e) => e.hint).filter(Boolean))].join('\n  '),
      { step: 'port-forward' },
      { cause: first },
    );
  }

  /** One per port-forward step, in plan order. */
  statuses(): ForwardStatus[] {
    return this.forwards.map((f) => f.status());
  }

  agentStatus(): AgentStatus | undefined {
    return this.agent?.status();
  }

  status(): ForwardSetStatus {
    const agent = this.agentStatus();
    return { forwards: this.statuses(), ...(agent ? { agent } : {}) };
  }

  /** Closes every listener and the agent channel; tells the final state. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.allSettled(this.consumers.map((c) => c.close?.() ?? Promise.resolve()));
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.opts.onChange?.(this.status());
  }

  private changed(): void {
    if (this.closed || !this.opts.onChange) return;
    if (this.timer) {
      this.pending = true;
      return;
    }
    this.opts.onChange(this.status());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.pending) return;
      this.pending = false;
      this.changed();
    }, this.opts.throttleMs ?? STATUS_THROTTLE_MS);
    // Nothing but a status write waits on it: it must not keep the process alive.
    this.timer.unref();
  }
}

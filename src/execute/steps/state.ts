// What set-up's steps share while they run: the values one step produces
// and others wait for (ports, the address reached), the record each process
// goes into the moment its pid is known, and what is said once the task list
// is done. One object per `up`, handed to every step handler.
import { EnvError, Interrupted } from '../../errors.js';
import type { ConnectStep, Plan } from '../../plan/types.js';
import type { ExecuteOptions } from '../execute-options.js';
import type { OnStarted, RelayStarted } from '../runner.js';

const SAVE_EVERY_MS = 500;

export interface Future<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/** A value one step produces and others wait for: a port, known once its step ran. */
export function future<T>(): Future<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export class SetupState {
  /** The session key, from mosh-server's step to mosh-client; held in memory only. */
  key: string | undefined;
  /** transport auto: why the UDP path could not be set up (a step with a fallback failed). */
  udpFailed: string | undefined;
  /** Said after mosh-client exits: it owns the terminal until then. */
  readonly notes: string[] = [];
  /** Said once the task list is done: a line logged while it renders would be drawn over. */
  readonly setupNotes: string[] = [];
  /** Server step → the address its mosh-server bound with -s, as it reported it. */
  readonly bound = new Map<number, string>();
  /** The numeric address the first connection reached (what every `reachedBy` names). */
  readonly firstReached = future<string | undefined>();
  private readonly ports = new Map<number, Future<number>>();
  private saveTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly connects: ConnectStep[];

  constructor(
    readonly plan: Plan,
    readonly o: ExecuteOptions,
  ) {
    this.connects = plan.steps.filter((s): s is ConnectStep => s.kind === 'connect');
  }

  /** The port step `id` produces (mosh-server's, a relay's, the tcp forwarder's). */
  portOf(id: number): Future<number> {
    let p = this.ports.get(id);
    if (!p) this.ports.set(id, (p = future<number>()));
    return p;
  }

  /** Awaited before each step; a signal that came meanwhile stops set-up there. */
  async check(kind: string): Promise<void> {
    await this.o.beforeStep?.(kind);
    const sig = this.o.interrupted();
    if (sig) throw new Interrupted(sig);
  }

  /** The address mosh-client (or auto's UDP leg) sends to; a forward step may need it before connect() returns. */
  async reachedAddress(): Promise<string> {
    const address = await this.firstReached.promise;
    if (address !== undefined) return address;
    // The planner sends such a route by tcp; this is for a plan asked to do otherwise.
    const first = this.connects[0];
    throw new EnvError(
      `mosh-client needs a numeric address for ${first?.host ?? 'the first hop'}, and ${first?.address ?? 'its name'} does not resolve on this machine`,
      `${first?.host ?? 'it'} is reached through a ProxyCommand, which mosh's UDP cannot follow: use --transport tcp`,
      { host: first?.host ?? 'local', step: 'client' },
    );
  }

  // Each process goes into the record the moment its pid is known (the runner's
  // OnStarted), not when its step ends: a second signal, or a crash, may come
  // in between, and what no record names nobody can stop.
  recordRelay(host: string, r: RelayStarted): void {
    const record = this.o.record;
    if (record.relays.some((x) => x.host === host && x.pid === r.pid)) return;
    record.relays.push({
      host,
      pid: r.pid,
      port: r.port,
      runtime: r.runtime,
      ...(r.started ? { started: r.started } : {}),
    });
    // Client side first, as the route goes.
    record.relays.sort((a, b) => this.plan.route.indexOf(a.host) - this.plan.route.indexOf(b.host));
    this.o.save(record);
    if (r.warning) this.o.log(`warning: ${host}: ${r.warning}`);
  }

  recordServer(host: string, s: { pid: number; port: number; started?: string }): void {
    const record = this.o.record;
    if (record.server?.host === host && record.server.pid === s.pid) return;
    record.server = { host, pid: s.pid, port: s.port, ...(s.started ? { started: s.started } : {}) };
    // mosh-server's own pid is what teardown stops from now on; its keeper ends with it.
    delete record.keeper;
    this.o.save(record);
  }

  /** The runner's OnStarted for steps on `host`. */
  recorder(host: string): OnStarted {
    return (p) => {
      if (p.kind === 'relay') return this.recordRelay(host, p.relay);
      if (p.kind === 'mosh-server') return this.recordServer(host, p);
      this.o.record.keeper = { host, pid: p.pid, ...(p.started ? { started: p.started } : {}) };
      this.o.save(this.o.record);
    };
  }

  /**
   * Saves the record within SAVE_EVERY_MS: what status shows of forwards and
   * the chain changes with every connection; the file need not.
   */
  saveSoon(): void {
    if (this.saveTimer || this.ended) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      if (!this.ended) this.o.save(this.o.record);
    }, SAVE_EVERY_MS);
    this.saveTimer.unref();
  }

  /** Teardown begins: nothing saves the record behind its back any more (it may be forgotten). */
  end(): void {
    this.ended = true;
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
  }

  /** A keeper whose mosh-server did not start has ended by itself (or was stopped). */
  forgetKeeper(): void {
    if (!this.o.record.keeper) return;
    delete this.o.record.keeper;
    this.o.save(this.o.record);
  }
}

// Runs a plan: setup steps as listr2 tasks, then mosh-client in the
// foreground, then teardown from the record of what was created. Decisions
// were made by the planner; this only follows the steps and records results.
import type { ListrTask } from 'listr2';
import { EnvError, Interrupted } from '../errors.js';
import type { ClientProgram, ClientStep, Plan, SetupStep } from '../plan/types.js';
import type { SessionRecord } from '../state/record.js';
import type { OnStarted, RelayStarted, Runner } from './runner.js';
import { teardown, type TeardownReport } from './teardown.js';
import { hostPort } from '../host-port.js';

export interface ExecuteOptions {
  runner: Runner;
  record: SessionRecord;
  /** Persists the record; called after every process is created or stopped. */
  save: (record: SessionRecord) => void;
  /** Removes the record once teardown left nothing behind. */
  forget: (record: SessionRecord) => void;
  /** Set when a signal arrived; checked between steps. */
  interrupted: () => NodeJS.Signals | undefined;
  /** Where progress and warnings go. */
  log: (line: string) => void;
  /** Renders tasks; listr2 in the CLI, a plain loop in tests. */
  runTasks: (tasks: ListrTask[]) => Promise<void>;
  /** Awaited before each setup step (by kind); lets tests interrupt at a chosen step. */
  beforeStep?: (kind: string) => Promise<void>;
  /** `--no-connect`: hands address, port and key to whoever asked (stdout). The only place the key leaves. */
  handOver?: (session: { address: string; port: number; key: string; program: ClientProgram }) => void;
}

export interface Outcome {
  /** mosh-client's exit code, when it ran. */
  clientCode?: number;
  /** `--no-connect`: the session was left running for a client elsewhere; no teardown ran. */
  handedOver?: boolean;
  /** Why setup stopped early (a failed step or a signal); teardown ran all the same. */
  error?: unknown;
  teardown: TeardownReport;
}

/** A value one step produces and others wait for: a port, known once its step ran. */
function future<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Never throws for a failed step: the error comes back with the teardown report. */
export async function execute(plan: Plan, o: ExecuteOptions): Promise<Outcome> {
  let key: string | undefined;
  const check = async (kind: string): Promise<void> => {
    await o.beforeStep?.(kind);
    const sig = o.interrupted();
    if (sig) throw new Interrupted(sig);
  };
  const connects = plan.steps.filter((s) => s.kind === 'connect');
  // The numeric address the first connection reached (what every `reachedBy` names);
  // a forward step may need it before runner.connect() returns.
  const firstReached = future<string | undefined>();
  const reachedAddress = async (): Promise<string> => {
    const address = await firstReached.promise;
    if (address !== undefined) return address;
    // The planner sends such a route by tcp; this is for a plan asked to do otherwise.
    const first = connects[0];
    throw new EnvError(
      `mosh-client needs a numeric address for ${first?.host ?? 'the first hop'}, and ${first?.address ?? 'its name'} does not resolve on this machine`,
      `${first?.host ?? 'it'} is reached through a ProxyCommand, which mosh's UDP cannot follow: use --transport tcp`,
      { host: first?.host ?? 'local', step: 'client' },
    );
  };
  // transport auto: why the UDP path could not be set up (a step with a fallback failed).
  let udpFailed: string | undefined;
  // Said after mosh-client exits: it owns the terminal until then.
  const notes: string[] = [];
  // Said once the task list is done: a line logged while it renders would be drawn over.
  const setupNotes: string[] = [];
  const ports = new Map<number, ReturnType<typeof future<number>>>();
  const portOf = (id: number): ReturnType<typeof future<number>> => {
    let p = ports.get(id);
    if (!p) ports.set(id, (p = future<number>()));
    return p;
  };
  /** Server step → the address its mosh-server bound with -s, as it reported it. */
  const bound = new Map<number, string>();
  const relaySteps = new Map(plan.steps.flatMap((s) => (s.kind === 'relay' ? [[s.id, s] as const] : [])));
  // Each process goes into the record the moment its pid is known (the runner's
  // OnStarted), not when its step ends: a second signal, or a crash, may come
  // in between, and what no record names nobody can stop.
  const recordRelay = (host: string, r: RelayStarted): void => {
    if (o.record.relays.some((x) => x.host === host && x.pid === r.pid)) return;
    o.record.relays.push({
      host,
      pid: r.pid,
      port: r.port,
      runtime: r.runtime,
      ...(r.started ? { started: r.started } : {}),
    });
    // Client side first, as the route goes.
    o.record.relays.sort((a, b) => plan.route.indexOf(a.host) - plan.route.indexOf(b.host));
    o.save(o.record);
    if (r.warning) o.log(`warning: ${host}: ${r.warning}`);
  };
  const recordServer = (host: string, s: { pid: number; port: number; started?: string }): void => {
    if (o.record.server?.host === host && o.record.server.pid === s.pid) return;
    o.record.server = { host, pid: s.pid, port: s.port, ...(s.started ? { started: s.started } : {}) };
    // mosh-server's own pid is what teardown stops from now on; its keeper ends with it.
    delete o.record.keeper;
    o.save(o.record);
  };
  const recorder =
    (host: string): OnStarted =>
    (p) => {
      if (p.kind === 'relay') return recordRelay(host, p.relay);
      if (p.kind === 'mosh-server') return recordServer(host, p);
      o.record.keeper = { host, pid: p.pid, ...(p.started ? { started: p.started } : {}) };
      o.save(o.record);
    };

  // What each step does; which step runs when is the plan's dependsOn.
  const runStep = async (step: SetupStep): Promise<string | undefined> => {
    switch (step.kind) {
      case 'server': {
        await check('server');
        const s = await o.runner.startServer(step, recorder(step.host)).catch((e: unknown) => {
          // A keeper whose mosh-server did not start has ended by itself (or was stopped).
          if (o.record.keeper) {
            delete o.record.keeper;
            o.save(o.record);
          }
          throw e;
        });
        recordServer(step.host, s);
        key = s.key;
        // A mosh-server that could not bind where it was told listens on every IPv4 address instead.
        if (s.bound !== undefined && !s.warning) bound.set(step.id, s.bound);
        if (s.warning) setupNotes.push(`warning: ${step.host}: ${s.warning}`);
        portOf(step.id).resolve(s.port);
        return `mosh-server on ${step.host}: UDP ${s.port}, pid ${s.pid}`;
      }
      case 'relay': {
        await check('relay');
        const forward = step.targetAtStart ? await portOf(step.forwardTo.port.step).promise : undefined;
        const r = await o.runner.startRelay(step, forward, recorder(step.host));
        if (!r) return `relay on ${step.host}: waits for its next hop (no python3 or perl there)`;
        recordRelay(step.host, r);
        portOf(step.id).resolve(r.port);
        return `relay on ${step.host} (${r.runtime}): UDP ${r.port}, pid ${r.pid}`;
      }
      case 'wire': {
        const relay = relaySteps.get(step.of);
        if (!relay) throw new Error(`bug: wire step ${step.id} of a step that is no relay`);
        const forward = await portOf(step.forwardTo.port.step).promise;
        await check('wire');
        const started = await o.runner.wireRelay(relay, forward, recorder(step.host));
        if (started) {
          recordRelay(step.host, started);
          portOf(relay.id).resolve(started.port);
        }
        return `relay on ${step.host} → ${hostPort(step.forwardTo.address, forward)}`;
      }
      case 'forward': {
        const serverPort = await portOf(step.to.port.step).promise;
        // mosh-server bound with -s said where (its step ran: its port is known); else it listens everywhere.
        const to = step.to.address;
        const serverAddress = typeof to === 'string' ? to : (bound.get(to.boundBy) ?? '127.0.0.1');
        const via = step.udpFirst?.to;
        const udp =
          via && udpFailed === undefined
            ? {
                address: 'local' in via.address ? via.address.local : await reachedAddress(),
                port: await portOf(via.port.step).promise,
              }
            : undefined;
        await check('forward');
        const f = await o.runner.startForward(
          step,
          { address: serverAddress, port: serverPort },
          udp,
          (why) => notes.push(`transport auto: switched to tcp, ${why}`),
        );
        portOf(step.id).resolve(f.port);
        const tcp = `forwarder on ${step.host} (${f.runtime ?? '?'}) ← 127.0.0.1 UDP ${f.port} here, through the ssh chain`;
        if (!step.udpFirst) return tcp;
        if (f.mode === 'udp')
          return `transport auto: UDP through ${via?.host ?? step.host} ← 127.0.0.1 UDP ${f.port} here; tcp stands by`;
        // A choice the user should see even where the task list does not stay on screen.
        setupNotes.push(`transport auto: tcp from the start, ${udpFailed ?? 'no UDP path'}`);
        return `transport auto: tcp; ${tcp}`;
      }
      default:
        return undefined;
    }
  };
  const titles: Record<string, string> = {
    server: 'start mosh-server',
    relay: 'start relay',
    wire: 'wire relay',
    forward: 'start forwarder',
  };
  const runnable = plan.steps.filter(
    (s) => s.kind === 'server' || s.kind === 'relay' || s.kind === 'wire' || s.kind === 'forward',
  );
  // A connect step is done when runner.connect() says its hop is open: steps on
  // that hop start while the hops behind it still connect.
  const opened = new Map(connects.map((s) => [s.host, future<undefined>()] as const));
  const done = new Map<number, Promise<string | undefined>>(
    connects.map((s) => [s.id, (opened.get(s.host) as ReturnType<typeof future<undefined>>).promise]),
  );
  // transport auto: a relay or wire step with a fallback that fails (not a
  // signal) only sends the session by tcp; its forward step learns why.
  const withFallback = (step: SetupStep): Promise<string | undefined> =>
    runStep(step).catch((e: unknown) => {
      if (e instanceof Interrupted || !('fallback' in step) || step.fallback === undefined) throw e;
      const why = e instanceof Error ? e.message : String(e);
      udpFailed ??= `${step.kind} on ${step.host} failed: ${why}`;
      portOf(step.id).reject(e); // what waits for this step's port must not wait forever
      return `${step.kind} on ${step.host} failed, so tcp: ${why}`;
    });
  for (const step of runnable) {
    const deps = step.dependsOn.map((id) => done.get(id)).filter((p) => p !== undefined);
    const p = Promise.all(deps).then(() => withFallback(step));
    // A failed step fails the port others wait for, so nothing waits forever.
    p.catch((e: unknown) => portOf(step.id).reject(e));
    done.set(step.id, p);
  }
  const tasks: ListrTask[] = runnable.map((step) => ({
    title: `${titles[step.kind] ?? step.kind} on ${step.host}`,
    task: async (_ctx, task) => {
      const title = await done.get(step.id);
      if (title) task.title = title;
    },
  }));

  const client = plan.steps.find((s): s is ClientStep => s.kind === 'client' || s.kind === 'hand-over');
  let clientCode: number | undefined;
  let handedOver = false;
  let error: unknown;
  try {
    o.save(o.record);
    // Connecting comes before the task list renders: login prompts (passwords,
    // one-time codes, passphrases) need the terminal to themselves. Steps on
    // the hops already open run meanwhile; they prompt for nothing.
    await check('connect');
    const started = performance.now();
    o.log(`connecting ${connects.map((s) => s.host).join(' → ')}`);
    const all = Promise.allSettled(done.values());
    try {
      const r = await o.runner.connect((host) => opened.get(host)?.resolve(undefined));
      firstReached.resolve(r.reachedAddress);
      // Every hop is open now, whether or not the runner said so one by one.
      for (const f of opened.values()) f.resolve(undefined);
      o.log(`connected in ${Math.round(performance.now() - started)} ms`);
      await o.runTasks(tasks);
    } catch (e) {
      // Nothing waits for a hop that never opened.
      for (const f of opened.values()) f.reject(e);
      firstReached.reject(e);
      throw e;
    } finally {
      // A failed step ends the list at once, but what the others started must be in the record before teardown.
      await all;
      for (const line of setupNotes) o.log(line);
    }
    for (const step of runnable) await done.get(step.id);
    await check('client');
    if (!client) throw new Error('bug: plan without a client step');
    const port = await portOf(client.connectTo.port.step).promise;
    const to = client.connectTo.address;
    const address = 'local' in to ? to.local : await reachedAddress();
    if (key === undefined || address === undefined)
      throw new Error('bug: client step without an address or key');
    if (client.kind === 'hand-over') {
      o.record.detached = true;
      o.save(o.record);
      o.handOver?.({ address, port, key, program: client.program });
      handedOver = true;
    } else {
      // mosh-client owns the terminal now: what healing does goes to the record, and is said after.
      const healed: string[] = [];
      const unwatch = o.runner.watchRelays?.(
        (e) => {
          const r = o.record.relays.find((x) => x.host === e.host && x.pid === e.oldPid);
          if (r) {
            Object.assign(r, {
              pid: e.relay.pid,
              port: e.relay.port,
              runtime: e.relay.runtime,
              restarts: e.restarts,
            });
            // The old relay's start time would make its successor look like a stranger.
            if (e.relay.started) r.started = e.relay.started;
            else delete r.started;
          }
          o.save(o.record);
          healed.push(`relay on ${e.host} restarted (pid ${e.relay.pid}, UDP ${e.relay.port})`);
        },
        (host, why) => healed.push(`relay on ${host} could not be healed: ${why}`),
      );
      try {
        clientCode = await o.runner.runClient(client.program, address, port, key);
      } finally {
        unwatch?.();
        for (const line of [...notes, ...healed]) o.log(line);
      }
    }
  } catch (e) {
    error = e;
  }
  key = undefined;
  if (handedOver) {
    // --no-connect: the session lives on for a client elsewhere; `down NAME` ends it.
    await o.runner.close().catch(() => undefined);
    return { clientCode: 0, handedOver: true, teardown: { stopped: [], left: [] } };
  }
  // Teardown runs on every ending: the client exited, a step failed, or a signal came.
  const report = await teardown(o.record, o.runner, { save: o.save, log: o.log });
  if (report.left.length === 0) o.forget(o.record);
  return {
    ...(clientCode !== undefined ? { clientCode } : {}),
    ...(error !== undefined ? { error } : {}),
    teardown: report,
  };
}

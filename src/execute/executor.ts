// Runs a plan: setup steps as listr2 tasks (each kind has its handler in
// steps/), then mosh-client in the foreground while the runner keeps the
// chain, then teardown from the record of what was created. Decisions were
// made by the planner; this only follows the steps and records results.
import type { ListrTask } from 'listr2';

export type { ExecuteOptions } from './execute-options.js';
import { Interrupted } from '../errors.js';
import type { ClientStep, Plan } from '../plan/types.js';
import type { ExecuteOptions } from './execute-options.js';
import { isTaskStep, runStep, titles, type TaskStep } from './steps/index.js';
import { future, SetupState, type Future } from './steps/state.js';
import { teardown, type TeardownReport } from './teardown.js';

export interface Outcome {
  /** mosh-client's exit code, when it ran. */
  clientCode?: number;
  /** `--no-connect`: the session was left running for a client elsewhere; no teardown ran. */
  handedOver?: boolean;
  /** Why setup stopped early (a failed step or a signal); teardown ran all the same. */
  error?: unknown;
  teardown: TeardownReport;
}

/** Never throws for a failed step: the error comes back with the teardown report. */
export async function execute(plan: Plan, o: ExecuteOptions): Promise<Outcome> {
  const s = new SetupState(plan, o);
  const connects = plan.steps.filter((x) => x.kind === 'connect');
  const runnable = plan.steps.filter(isTaskStep);
  // A connect step is done when runner.connect() says its hop is open: steps on
  // that hop start while the hops behind it still connect.
  const opened = new Map(connects.map((x) => [x.host, future<undefined>()] as const));
  const done = new Map<number, Promise<string | undefined>>(
    connects.map((x) => [x.id, (opened.get(x.host) as Future<undefined>).promise]),
  );
  // transport auto: a relay or wire step with a fallback that fails (not a
  // signal) only sends the session by tcp; its forward step learns why.
  const withFallback = (step: TaskStep): Promise<string | undefined> =>
    runStep(step, s).catch((e: unknown) => {
      if (e instanceof Interrupted || !('fallback' in step) || step.fallback === undefined) throw e;
      const why = e instanceof Error ? e.message : String(e);
      s.udpFailed ??= `${step.kind} on ${step.host} failed: ${why}`;
      s.portOf(step.id).reject(e); // what waits for this step's port must not wait forever
      return `${step.kind} on ${step.host} failed, so tcp: ${why}`;
    });
  for (const step of runnable) {
    const deps = step.dependsOn.map((id) => done.get(id)).filter((p) => p !== undefined);
    const p = Promise.all(deps).then(() => withFallback(step));
    // A failed step fails the port others wait for, so nothing waits forever.
    p.catch((e: unknown) => s.portOf(step.id).reject(e));
    done.set(step.id, p);
  }
  const tasks: ListrTask[] = runnable.map((step) => ({
    title: `${titles[step.kind]} on ${step.host}`,
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
    await s.check('connect');
    const started = performance.now();
    o.log(`connecting ${connects.map((s) => s.host).join(' → ')}`);
    const all = Promise.allSettled(done.values());
    try {
      const r = await o.runner.connect((host) => opened.get(host)?.resolve(undefined));
      s.firstReached.resolve(r.reachedAddress);
      // Every hop is open now, whether or not the runner said so one by one.
      for (const f of opened.values()) f.resolve(undefined);
      o.log(`connected in ${Math.round(performance.now() - started)} ms`);
      await o.runTasks(tasks);
    } catch (e) {
      // Nothing waits for a hop that never opened.
      for (const f of opened.values()) f.reject(e);
      s.firstReached.reject(e);
      throw e;
    } finally {
      // A failed step ends the list at once, but what the others started must be in the record before teardown.
      await all;
      for (const line of s.setupNotes) o.log(line);
    }
    for (const step of runnable) await done.get(step.id);
    await s.check('client');
    if (!client) throw new Error('bug: plan without a client step');
    const port = await s.portOf(client.connectTo.port.step).promise;
    const to = client.connectTo.address;
    const address = 'local' in to ? to.local : await s.reachedAddress();
    const key = s.key;
    if (key === undefined || address === undefined)
      throw new Error('bug: client step without an address or key');
    if (client.kind === 'hand-over') {
      o.record.detached = true;
      o.save(o.record);
      o.handOver?.({ address, port, key, program: client.program });
      handedOver = true;
    } else {
      // mosh-client owns the terminal now: what the kept chain does goes to the record, and is said after.
      const healed: string[] = [];
      const stopKeeping = o.runner.keep?.({
        onRelayRestart: (e) => {
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
        onTrouble: (who, why) => healed.push(`${who}: ${why}`),
        onChain: (state) => {
          o.record.chain = state;
          s.saveSoon();
        },
      });
      try {
        clientCode = await o.runner.runClient(client.program, address, port, key);
      } finally {
        await stopKeeping?.();
        for (const line of [...s.notes, ...healed]) o.log(line);
      }
    }
  } catch (e) {
    error = e;
  }
  s.key = undefined;
  s.end();
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

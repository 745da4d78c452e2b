// Runs a plan: setup steps as listr2 tasks, then mosh-client in the
// foreground, then teardown from the record of what was created. Decisions
// were made by the planner; this only follows the steps and records results.
import type { ListrTask } from 'listr2';
import { Interrupted } from '../errors.js';
import type { ClientStep, Plan } from '../plan/types.js';
import type { SessionRecord } from '../state/record.js';
import type { Runner } from './runner.js';
import { teardown, type TeardownReport } from './teardown.js';

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
  handOver?: (session: { address: string; port: number; key: string }) => void;
}

export interface Outcome {
  /** mosh-client's exit code, when it ran. */
  clientCode?: number;
  /** Why setup stopped early (a failed step or a signal); teardown ran all the same. */
  error?: unknown;
  teardown: TeardownReport;
}

/** Never throws for a failed step: the error comes back with the teardown report. */
export async function execute(plan: Plan, o: ExecuteOptions): Promise<Outcome> {
  const ports = new Map<number, number>();
  let key: string | undefined;
  const check = async (kind: string): Promise<void> => {
    await o.beforeStep?.(kind);
    const sig = o.interrupted();
    if (sig) throw new Interrupted(sig);
  };
  const connects = plan.steps.filter((s) => s.kind === 'connect');
  const reached = new Map<number, string>();
  const tasks: ListrTask[] = [];
  for (const step of plan.steps) {
    if (step.kind === 'server') {
      tasks.push({
        title: `start mosh-server on ${step.host}`,
        task: async (_ctx, task) => {
          await check('server');
          const s = await o.runner.startServer(step);
          o.record.server = { host: step.host, pid: s.pid, port: s.port };
          o.save(o.record);
          ports.set(step.id, s.port);
          key = s.key;
          task.title = `mosh-server on ${step.host}: UDP ${s.port}, pid ${s.pid}`;
        },
      });
    } else if (step.kind === 'relay') {
      tasks.push({
        title: `start relay on ${step.host}`,
        task: async (_ctx, task) => {
          await check('relay');
          const forward = ports.get(step.forwardTo.port.step);
          if (forward === undefined)
            throw new Error(`bug: relay step ${step.id} ran before step ${step.forwardTo.port.step}`);
          const r = await o.runner.startRelay(step, forward);
          o.record.relays.unshift({ host: step.host, pid: r.pid, port: r.port, runtime: r.runtime });
          o.save(o.record);
          ports.set(step.id, r.port);
          task.title = `relay on ${step.host} (${r.runtime}): UDP ${r.port} → ${step.forwardTo.address}:${forward}, pid ${r.pid}`;
          if (r.warning) o.log(`warning: ${step.host}: ${r.warning}`);
        },
      });
    }
  }

  const client = plan.steps.find((s): s is ClientStep => s.kind === 'client' || s.kind === 'hand-over');
  let clientCode: number | undefined;
  let handedOver = false;
  let error: unknown;
  try {
    o.save(o.record);
    // Connecting comes before the task list renders: login prompts (passwords,
    // one-time codes, passphrases) need the terminal to themselves.
    await check('connect');
    const started = performance.now();
    o.log(`connecting ${connects.map((s) => s.host).join(' → ')}`);
    const first = connects[0];
    const r = await o.runner.connect();
    if (first) reached.set(first.id, r.reachedAddress);
    o.log(`connected in ${Math.round(performance.now() - started)} ms`);
    await o.runTasks(tasks);
    await check('client');
    if (!client) throw new Error('bug: plan without a client step');
    const port = ports.get(client.connectTo.port.step);
    const address = reached.get(client.connectTo.address.reachedBy);
    if (port === undefined || key === undefined || address === undefined)
      throw new Error('bug: client step without address, port or key');
    if (client.kind === 'hand-over') {
      o.record.detached = true;
      o.save(o.record);
      o.handOver?.({ address, port, key });
      handedOver = true;
    } else {
      // mosh-client owns the terminal now: what healing does goes to the record, and is said after.
      const healed: string[] = [];
      const unwatch = o.runner.watchRelays?.(
        (e) => {
          const r = o.record.relays.find((x) => x.host === e.host && x.pid === e.oldPid);
          if (r)
            Object.assign(r, {
              pid: e.relay.pid,
              port: e.relay.port,
              runtime: e.relay.runtime,
              restarts: e.restarts,
            });
          o.save(o.record);
          healed.push(`relay on ${e.host} restarted (pid ${e.relay.pid}, UDP ${e.relay.port})`);
        },
        (host, why) => healed.push(`relay on ${host} could not be healed: ${why}`),
      );
      try {
        clientCode = await o.runner.runClient(address, port, key);
      } finally {
        unwatch?.();
        for (const line of healed) o.log(line);
      }
    }
  } catch (e) {
    error = e;
  }
  key = undefined;
  if (handedOver) {
    // --no-connect: the session lives on for a client elsewhere; `down NAME` ends it.
    await o.runner.close().catch(() => undefined);
    return { clientCode: 0, teardown: { stopped: [], left: [] } };
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

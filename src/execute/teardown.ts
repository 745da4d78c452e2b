// Undo what a record says was created: every host's processes stopped at
// once (hosts are independent), then ssh closed.
// Used by `up` at its end and by `down` from any process. Every item is
// tried; what could not be stopped stays in the record so running `down`
// again finishes the job.
import { EnvError } from '../errors.js';
import type { SessionRecord } from '../state/record.js';
import type { Runner } from './runner.js';

export interface TeardownReport {
  stopped: string[];
  /** Items still in the record, each with why. */
  left: { what: string; why: string }[];
}

export async function teardown(
  record: SessionRecord,
  runner: Runner,
  o: { save: (r: SessionRecord) => void; log: (line: string) => void },
): Promise<TeardownReport> {
  const report: TeardownReport = { stopped: [], left: [] };
  const unreachable = new Map<string, string>();
  const attempt = async (what: string, host: string, stop: () => Promise<string>): Promise<boolean> => {
    const known = unreachable.get(host);
    if (known) {
      report.left.push({ what, why: known });
      return false;
    }
    try {
      const outcome = await stop();
      if (outcome === 'unknown') {
        // Forgetting it could leave it running for good: the record keeps it.
        report.left.push({
          what,
          why: `${host} could not tell whether it still runs (no /proc there, and no ps that answers for a pid); nothing was signalled`,
        });
        return false;
      }
      report.stopped.push(
        outcome === 'other'
          ? `${what} (pid now belongs to another program; left alone)`
          : `${what} (${outcome})`,
      );
      return true;
    } catch (e) {
      const why = e instanceof EnvError ? `${e.message}` : String(e);
      // Only a failed connection says the host is out of reach; a failed stop says nothing of the next one.
      if (e instanceof EnvError && e.where.step === 'connect') unreachable.set(host, why);
      report.left.push({ what, why });
      return false;
    }
  };

  // Hosts are independent: each stops its own processes while the others do,
  // relays of a host before its server (a client-side relay first in the record).
  const jobs = new Map<string, (() => Promise<void>)[]>();
  const add = (host: string, job: () => Promise<void>): void => {
    jobs.set(host, [...(jobs.get(host) ?? []), job]);
  };
  for (const relay of [...record.relays]) {
    const what = `relay on ${relay.host} (pid ${relay.pid}, UDP ${relay.port})`;
    add(relay.host, async () => {
      if (await attempt(what, relay.host, () => runner.stop(relay.host, relay.pid, 'relay', relay.started))) {
        record.relays = record.relays.filter((r) => r !== relay);
        o.save(record);
      }
    });
  }
  const server = record.server;
  if (server) {
    const what = `mosh-server on ${server.host} (pid ${server.pid}, UDP ${server.port})`;
    add(server.host, async () => {
      if (
        await attempt(what, server.host, () =>
          runner.stop(server.host, server.pid, 'mosh-server', server.started),
        )
      ) {
        delete record.server;
        o.save(record);
      }
    });
  }
  // mosh-server was being started when `up` stopped: its shell stops it (or it never started).
  const keeper = record.keeper;
  if (keeper) {
    const what = `mosh-server being started on ${keeper.host} (its shell, pid ${keeper.pid})`;
    add(keeper.host, async () => {
      if (
        await attempt(what, keeper.host, () => runner.stop(keeper.host, keeper.pid, 'keeper', keeper.started))
      ) {
        delete record.keeper;
        o.save(record);
      }
    });
  }
  // The agent's stable link on the target: it would point at a dead socket after the session.
  const agent = record.agent;
  if (agent) {
    const what = `agent link ${agent.socket} on ${agent.host}`;
    add(agent.host, async () => {
      if (await attempt(what, agent.host, () => runner.unlinkAgent(agent.host, agent.socket))) {
        delete record.agent;
        o.save(record);
      }
    });
  }
  await Promise.all(
    [...jobs.values()].map(async (list) => {
      for (const job of list) await job();
    }),
  );
  await runner.close().catch(() => undefined);
  for (const l of report.left) {
    o.log(`not stopped: ${l.what}: ${l.why}`);
  }
  if (report.left.length > 0) {
    o.log(
      `what is left exits on its own after ${record.networkTimeout} s without a client; or run "moshctl down ${record.name}" again`,
    );
  }
  return report;
}

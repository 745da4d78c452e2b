// When `up` stops waiting for its teardown (a second Ctrl-C or SIGTERM), what
// it started must still be stopped: it starts `moshctl down --id ID` detached
// (its own session, so neither Ctrl-C nor a closed terminal reaches it; its
// output in a log beside the record) and exits. The cleanup opens a new chain
// from the record (openssh's ControlMasters die with `up`), tries again while
// a hop is out of reach, and removes the record and its log once nothing is
// left. `status` shows it meanwhile; `down` takes over from it. Both sides of
// the hand-over are here: up's (handOverTeardown) and down's (the rest).
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cleanupOwner, owner, processIdentity } from '../state/owner.js';
import type { SessionRecord } from '../state/record.js';
import type { SessionStore } from '../state/store.js';

export interface HandedOver {
  /** The cleanup's pid; undefined when it could not be started (then `down NAME` is the way). */
  pid: number | undefined;
  log: string;
}

/**
 * Records the cleanup and starts it. Synchronous from start to end, so a
 * signal that comes meanwhile cannot start a second one.
 */
export function handOverTeardown(
  store: SessionStore,
  record: SessionRecord,
  o: { env: Readonly<Record<string, string | undefined>>; debug: boolean; why: string },
): HandedOver {
  const since = new Date().toISOString();
  const log = store.logFile(record.id);
  // Recorded first: a cleanup that starts before its pid is written knows the record is its own.
  record.cleanup = { since };
  store.write(record);
  const failed = (): HandedOver => {
    delete record.cleanup;
    try {
      store.write(record);
    } catch {
      // the record as it was, with the cleanup that did not start: down NAME sees through it
    }
    return { pid: undefined, log };
  };
  let fd: number | undefined;
  try {
    fd = openSync(log, 'a', 0o600);
    writeSync(
      fd,
      `${since} moshctl up (pid ${process.pid}) stopped waiting (${o.why}); a detached moshctl down finishes its teardown\n`,
    );
    const script = process.argv[1];
    if (!script) return failed();
    const child = spawn(
      process.execPath,
      [script, 'down', '--id', record.id, ...(o.debug ? ['--debug'] : [])],
      {
        // Its own session and process group: no Ctrl-C, no hangup from this terminal.
        detached: true,
        stdio: ['ignore', fd, fd],
        env: o.env,
      },
    );
    child.on('error', () => undefined);
    child.unref();
    const pid = child.pid;
    if (pid === undefined) return failed();
    const { startTime } = processIdentity(pid);
    record.cleanup = { pid, ...(startTime ? { startTime } : {}), since };
    store.write(record);
    return { pid, log };
  } catch {
    return failed();
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// --- The cleanup's side: `down --id ID`, and any `down` that meets a cleanup ---

/** An `up` that handed its teardown to a cleanup exits at once; this is only in case it has not yet. */
const HANDED_OVER_EXIT_MS = 5_000;
/** A cleanup told to stop (SIGTERM) is gone at once: it saves the record after every step. */
const CLEANUP_STOP_MS = 5_000;
/**
 * A cleanup tries again while something is left (a hop out of reach for a
 * while), waiting longer each time, for up to this long in all. Past it,
 * what is left has mostly timed out by itself (mosh-server waits 60 s for a
 * first client, a relay 120 s), and the record keeps the rest for `down`.
 */
const CLEANUP_PATIENCE_MS = 5 * 60_000;
const CLEANUP_RETRY_MS = [2_000, 4_000, 8_000, 15_000, 30_000];

/** Whether this process is the cleanup `record` names (or one about to be named: its pid is written just after it starts). */
export function isCleanup(record: SessionRecord): boolean {
  return record.cleanup !== undefined && (record.cleanup.pid ?? process.pid) === process.pid;
}

/**
 * A session whose `up` handed its teardown to a cleanup. Its `up` is never
 * signalled (it is exiting, or gone); a cleanup other than this process is
 * told to stop (SIGTERM), and this process goes on from the record it left,
 * without its cleanup. The record read afresh, or undefined once it is gone.
 */
export async function takeOver(
  stderr: (text: string) => void,
  store: SessionStore,
  record: SessionRecord,
  byId: boolean,
): Promise<SessionRecord | undefined> {
  const deadline = Date.now() + HANDED_OVER_EXIT_MS;
  while (owner(record).kind === 'alive' && Date.now() < deadline) await sleep(50);
  if (byId && isCleanup(record)) return record;
  const cleanup = cleanupOwner(record);
  if (cleanup?.kind === 'alive') {
    stderr(`moshctl: ${record.id}: taking over from its cleanup (pid ${cleanup.pid})\n`);
    try {
      process.kill(cleanup.pid, 'SIGTERM');
    } catch {
      // ended meanwhile
    }
    const stop = Date.now() + CLEANUP_STOP_MS;
    while (cleanupOwner(record)?.kind === 'alive' && Date.now() < stop) await sleep(50);
  }
  const fresh = store.list().records.find((r) => r.id === record.id);
  if (!fresh) return undefined;
  delete fresh.cleanup;
  store.write(fresh);
  return fresh;
}

/**
 * The cleanup an `up` left: teardown from the record, again after a pause
 * while something is left (a hop out of reach for a while), for up to
 * CLEANUP_PATIENCE_MS; it stops early once the record is gone or no longer
 * names it (a `down` took over). Its output is its log (state/ID.log).
 */
export async function cleanUp(
  stderr: (text: string) => void,
  store: SessionStore,
  first: SessionRecord,
  stop: (record: SessionRecord) => Promise<boolean>,
): Promise<boolean> {
  const started = Date.now();
  let record = first;
  const say = (line: string): void => stderr(`${new Date().toISOString()} ${line}\n`);
  say(`cleaning up ${record.id} for moshctl up (pid ${record.pid})`);
  for (let attempt = 0; ; attempt++) {
    if (await stop(record)) return true;
    const pause = CLEANUP_RETRY_MS[Math.min(attempt, CLEANUP_RETRY_MS.length - 1)] ?? 30_000;
    if (Date.now() + pause - started > CLEANUP_PATIENCE_MS) {
      say(
        `giving up after ${Math.round((Date.now() - started) / 1000)} s; "moshctl down ${record.name}" tries again`,
      );
      return false;
    }
    say(`trying again in ${pause / 1000} s`);
    await sleep(pause);
    const fresh = store.list().records.find((r) => r.id === record.id);
    if (!fresh || !isCleanup(fresh)) {
      say('another moshctl down took over');
      return true;
    }
    record = fresh;
  }
}

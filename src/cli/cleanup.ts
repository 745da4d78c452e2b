// When `up` stops waiting for its teardown (a second Ctrl-C or SIGTERM), what
// it started must still be stopped: it starts `moshctl down --id ID` detached
// (its own session, so neither Ctrl-C nor a closed terminal reaches it; its
// output in a log beside the record) and exits. The cleanup opens a new chain
// from the record (openssh's ControlMasters die with `up`), tries again while
// a hop is out of reach, and removes the record and its log once nothing is
// left. `status` shows it meanwhile; `down` takes over from it.
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { processIdentity } from '../state/owner.js';
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

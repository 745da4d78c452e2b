// Stopping and checking remote processes by pid. Before signalling, the pid's
// command line must still contain what we started (mosh-server, the relay),
// so a pid reused by an unrelated process after a reboot is never touched.
// Every command is safe to run twice: a process already gone is "gone".
import { UserError } from '../errors.js';
import { SH, shellQuote } from '../relay/shell.js';

/**
 * Pids come from state records, which a person can edit: pid 1 and below would
 * make `kill -PID` signal init or every process of the user.
 */
export function checkPid(pid: number): number {
  if (!Number.isInteger(pid) || pid < 2 || pid > 4194304) {
    throw UserError.one(
      `invalid pid ${pid} in a session record`,
      'the record is damaged; remove its file from the state folder',
    );
  }
  return pid;
}

/**
 * TERM now; a detached watchdog sends KILL if it is still there 5 s later.
 * Not waiting matters: mosh-server spends a second or more trying to say
 * goodbye to a client that is already gone, and teardown should not wait for
 * that. Prints one word: stopped, gone or other (the pid now belongs to
 * something else and is left alone).
 */
/**
 * What `ps -o lstart=` printed for a process when moshctl learned of it,
 * words joined by single spaces: with the pid, it names that process and no
 * later one (pids are reused, after a reboot within seconds). Only letters,
 * digits, spaces and colons: it is put into remote commands.
 */
export const LSTART = /^[A-Za-z0-9 :]{10,40}$/;

/** A recorded start time, if it is one a command may carry; undefined otherwise (then only the command line is checked). */
export function checkStarted(started: string | undefined): string | undefined {
  return started !== undefined && LSTART.test(started) ? started : undefined;
}

/** sh: a command that succeeds when pid $p started at `started`; undefined without one. */
function startedAt(started: string | undefined): string | undefined {
  const w = checkStarted(started);
  return w === undefined
    ? undefined
    : `{ set -- $(ps -o lstart= -p "$p" 2>/dev/null); [ "$*" = ${shellQuote(w)} ]; }`;
}

export function stopByPidCommand(pid: number, marker: string, started?: string): string {
  const p = checkPid(pid);
  const same = startedAt(started);
  // Only while the process is there: a gone one says so, whatever its start.
  const start = same
    ? `if [ -n "$(ps -o stat= -p "$p" 2>/dev/null)" ] && ! ${same}; then echo other; exit 0; fi; `
    : '';
  return `${SH} -c ${shellQuote(`p=${p}; ${start}${stopPidScript(marker)}`)}`;
}

/** The sh script behind stopByPidCommand, for a pid already in `$p` (digits only). */
export function stopPidScript(marker: string): string {
  // Only the marker is quoted: a quoted `*` in a case pattern is a literal star.
  const m = `*${shellQuote(marker)}*`;
  // Under /bin/sh (not found via PATH, which a login may narrow), so a fish or csh
  // login shell on the host runs it the same.
  return [
    // A zombie has exited already; only its parent can reap it.
    `case "$(ps -o stat= -p "$p" 2>/dev/null)" in ''|Z*) echo gone; exit 0;; esac`,
    `case "$(ps -o args= -p "$p" 2>/dev/null)" in ${m}) ;; *) echo other; exit 0;; esac`,
    `kill "$p" 2>/dev/null`,
    // `&` ends its own command: no `;` may follow it.
    `(i=0; while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done; kill -9 "$p" 2>/dev/null) </dev/null >/dev/null 2>&1 & echo stopped`,
  ].join('; ');
}

export type StopOutcome = 'stopped' | 'gone' | 'other';

export function parseStop(stdout: string): StopOutcome | undefined {
  const word = stdout.trim().split('\n').pop();
  return word === 'stopped' || word === 'gone' || word === 'other' ? word : undefined;
}

/** For each pid prints "PID alive" or "PID dead", checking the marker the same way as stop. */
export function aliveCommand(processes: { pid: number; marker: string; started?: string }[]): string {
  const script = processes
    .map(({ pid, marker, started }) => {
      const p = checkPid(pid);
      const same = startedAt(started);
      const yes = same
        ? `p=${p}; if ${same}; then echo "${p} alive"; else echo "${p} dead"; fi`
        : `echo "${p} alive"`;
      return `case "$(ps -o stat= -p ${p} 2>/dev/null)" in ''|Z*) echo "${p} dead";; *) case "$(ps -o args= -p ${p} 2>/dev/null)" in *${shellQuote(marker)}*) ${yes};; *) echo "${p} dead";; esac;; esac`;
    })
    .join('; ');
  return `${SH} -c ${shellQuote(script)}`;
}

export function parseAlive(stdout: string): Map<number, boolean> {
  const out = new Map<number, boolean>();
  for (const m of stdout.matchAll(/^(\d+) (alive|dead)$/gm)) out.set(Number(m[1]), m[2] === 'alive');
  return out;
}

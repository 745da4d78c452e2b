// Stopping and checking remote processes by pid. Before signalling, the pid's
// command line must still contain what we started (mosh-server, the relay),
// so a pid reused by an unrelated process after a reboot is never touched.
// Every command is safe to run twice: a process already gone is "gone".
import { UserError } from '../errors.js';
import { SH, shellQuote } from './shell.js';

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
 * A process's start, as field 22 of /proc/PID/stat (clock ticks after boot):
 * with the pid (and the host's boot) it names that process and no later one,
 * pids being reused, after a reboot within seconds. Exact, unlike
 * `ps -o lstart=`, whose seconds jitter between calls. Only digits: it is put
 * into remote commands. Hosts without /proc record none.
 */
export const STARTED = /^\d{1,20}$/;

/** A recorded start, if it is one a command may carry; undefined otherwise (then only the command line is checked). */
export function checkStarted(started: string | undefined): string | undefined {
  return started !== undefined && STARTED.test(started) ? started : undefined;
}

/**
 * sh: `startof PID` prints field 22 of /proc/PID/stat, or nothing. The fields
 * after the command name (which may hold spaces) start at field 3.
 */
export const START_OF_SH = `startof() { set -- $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null); [ $# -ge 20 ] && { shift 19; echo "$1"; }; }`;

/**
 * sh, the one answer to "is this pid still ours" for every process moshctl
 * stops or checks on a host (mosh-server, relays):
 * - `running PID`: it exists and is no zombie (a zombie has exited already;
 *   only its parent can reap it). ps, so also where there is no /proc.
 * - `ours PID STARTED MARKER...`: its start is STARTED when one was recorded
 *   (field 22 of /proc/PID/stat; hosts without /proc record none), and its
 *   command line (ps again) contains one of the markers. A reused pid fails one or the other.
 * No backslashes: the text travels quoted through the login shell, which may be fish.
 */
export const OURS_SH = [
  START_OF_SH,
  `running() { case "$(ps -o stat= -p "$1" 2>/dev/null)" in ''|Z*) return 1;; esac; }`,
  `ours() { o_p=$1 o_w=$2; shift 2; if [ -n "$o_w" ]; then [ "$(startof "$o_p")" = "$o_w" ] || return 1; fi; o_a=$(ps -o args= -p "$o_p" 2>/dev/null); for o_m in "$@"; do case "$o_a" in *"$o_m"*) return 0;; esac; done; return 1; }`,
].join('; ');

export function stopByPidCommand(pid: number, marker: string, started?: string): string {
  const w = checkStarted(started) ?? "''";
  return `${SH} -c ${shellQuote(`${OURS_SH}; p=${checkPid(pid)} w=${w}; ${stopPidScript(marker)}`)}`;
}

/**
 * The sh script behind stopByPidCommand, for a pid already in `$p` (digits
 * only) and its recorded start in `$w` (digits, or empty); needs OURS_SH.
 */
export function stopPidScript(marker: string): string {
  // Under /bin/sh (not found via PATH, which a login may narrow), so a fish or csh
  // login shell on the host runs it the same.
  return [
    `running "$p" || { echo gone; exit 0; }`,
    `ours "$p" "$w" ${shellQuote(marker)} || { echo other; exit 0; }`,
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
      return `if running ${p} && ours ${p} ${checkStarted(started) ?? "''"} ${shellQuote(marker)}; then echo "${p} alive"; else echo "${p} dead"; fi`;
    })
    .join('; ');
  return `${SH} -c ${shellQuote(`${OURS_SH}; ${script}`)}`;
}

export function parseAlive(stdout: string): Map<number, boolean> {
  const out = new Map<number, boolean>();
  for (const m of stdout.matchAll(/^(\d+) (alive|dead)$/gm)) out.set(Number(m[1]), m[2] === 'alive');
  return out;
}

// Stopping and checking remote processes by pid, on any host's userland: GNU
// (procps), busybox (Alpine, OpenWrt: its `ps` has no `-p`), dash or ash as
// /bin/sh, and BSD or macOS, which have no /proc. Before signalling, the pid's
// command line must still contain what we started (mosh-server, the relay),
// so a pid reused by an unrelated process after a reboot is never touched.
// Every command is safe to run twice: a process already gone is "gone". A host
// where neither /proc nor any form of ps answers says "unknown", never "gone":
// a check that cannot see must not make moshctl forget a process that runs.
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
 * A process's start, as field 22 of /proc/PID/stat (clock ticks after boot):
 * with the pid (and the host's boot) it names that process and no later one,
 * pids being reused, after a reboot within seconds. Only digits: it is put
 * into remote commands.
 *
 * Hosts without /proc (BSD, macOS) record none, on purpose: their only source
 * is `ps -o lstart=`, a wall-clock time to the second that follows clock steps
 * and (procps) jitters between calls, so a check against it would either
 * refuse the right process or need a tolerance that lets a reused pid through.
 * There the command line alone decides for mosh-server and relays, and the
 * session processes of dead ssh connections (sshd-session.ts), which every
 * session of the user shares a command line with, are not ended at all.
 */
export const STARTED = /^\d{1,20}$/;

/** A recorded start, if it is one a command may carry; undefined otherwise (then only the command line is checked). */
export function checkStarted(started: string | undefined): string | undefined {
  return started !== undefined && STARTED.test(started) ? started : undefined;
}

/**
 * sh: the functions every remote script that asks "is this pid ours" uses,
 * each preferring /proc where it exists (Linux, busybox included), else the
 * form of ps this host has:
 * - `psform`: which, found once by asking about this very shell ($$):
 *   `ps -ww -o COL= -p PID` (procps, BSD, macOS; -ww: BSD cuts args at 79
 *   columns when not on a terminal), `ps -o COL= -p PID`, busybox's
 *   `ps -o pid,COL` listing every process (it has no -p), or none.
 * - `pscol PID COL`: that column for PID, empty when there is no such
 *   process; status 2 when no form of ps works here.
 * - `cmdline PID`: its command line (NULs as spaces); status 1 when there is
 *   no such process, 2 when this host cannot tell.
 * - `alive PID`: status 0 when it runs (a zombie has exited already; only its
 *   parent can reap it), 1 when it does not, 2 when this host cannot tell
 *   (no /proc, no ps, yet `kill -0` finds a process: maybe ours, maybe not).
 *   A pid that `kill -0` cannot signal is not ours, whoever has it.
 * - `startof PID`: field 22 of /proc/PID/stat, or nothing (see STARTED).
 * - `ppid PID`: its parent's pid; status 2 when this host cannot tell.
 * - `ours PID STARTED MARKER...`: status 0 when its start is STARTED (when one
 *   was recorded) and its command line contains one of the markers, 1 when
 *   not, 2 when this host cannot tell. A reused pid fails one or the other.
 * - `pstable`: `PID PPID` for every process; status 2 when this host cannot list them.
 * One line joined with `; ` (a csh login shell takes no newline inside
 * quotes), with no `!` (csh history) and no `\\` or `\'` (fish reads those
 * inside single quotes): the text travels quoted through the login shell.
 * Variables are q_-prefixed: POSIX sh has no locals, and callers use short names.
 */
export const PROC_SH = [
  'q_ps=',
  `psform() { [ -n "$q_ps" ] && return 0; q_ps=n; q_o=$(ps -ww -o pid= -p $$ 2>/dev/null); case " $q_o " in *" $$ "*) q_ps=W; return 0;; esac; q_o=$(ps -o pid= -p $$ 2>/dev/null); case " $q_o " in *" $$ "*) q_ps=p; return 0;; esac; ps -o pid,args 2>/dev/null | awk -v p=$$ '$1 == p { f = 1 } END { exit (f ? 0 : 1) }' && q_ps=a; return 0; }`,
  `pscol() { psform; case $q_ps in W) ps -ww -o "$2=" -p "$1" 2>/dev/null;; p) ps -o "$2=" -p "$1" 2>/dev/null;; a) ps -o "pid,$2" 2>/dev/null | awk -v p="$1" 'NR > 1 && $1 == p { sub(/^ *[0-9]+ */, ""); print; exit }';; *) return 2;; esac; return 0; }`,
  `cmdline() { if [ -d /proc/self ]; then [ -d "/proc/$1" ] || return 1; tr '\\000' ' ' 2>/dev/null <"/proc/$1/cmdline"; echo; return 0; fi; q_c=$(pscol "$1" args) || return 2; [ -n "$q_c" ] || return 1; printf '%s\\n' "$q_c"; }`,
  `alive() { if [ -d /proc/self ]; then q_s=$(sed -n 's/^.*) \\(.\\).*$/\\1/p' "/proc/$1/stat" 2>/dev/null); case $q_s in ''|Z|X) return 1;; esac; return 0; fi; q_s=$(pscol "$1" stat) || { kill -0 "$1" 2>/dev/null && return 2; return 1; }; case " $q_s" in *" Z"*) return 1;; *[A-Za-z]*) return 0;; esac; return 1; }`,
  `startof() { set -- $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null); [ $# -ge 20 ] && { shift 19; echo "$1"; }; }`,
  `ppid() { if [ -d /proc/self ]; then set -- $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null); [ $# -ge 2 ] && echo "$2"; return 0; fi; q_p=$(pscol "$1" ppid) || return 2; echo $q_p; }`,
  `ours() { q_i=$1 q_w=$2; shift 2; if [ -n "$q_w" ]; then [ -d /proc/self ] || return 2; [ "$(startof "$q_i")" = "$q_w" ] || return 1; fi; q_a=$(cmdline "$q_i"); q_r=$?; [ "$q_r" -eq 0 ] || return "$q_r"; for q_m in "$@"; do case "$q_a" in *"$q_m"*) return 0;; esac; done; return 1; }`,
  `pstable() { if [ -d /proc/self ]; then cat /proc/[0-9]*/stat 2>/dev/null | sed -n 's/^\\([0-9]*\\) .*) [^ ]* \\([0-9]*\\) .*$/\\1 \\2/p'; return 0; fi; psform; case $q_ps in W|p) ps -A -o pid= -o ppid= 2>/dev/null;; a) ps -o pid,ppid 2>/dev/null | sed 1d;; *) return 2;; esac; return 0; }`,
].join('; ');

/**
 * TERM now; a detached watchdog sends KILL if it is still there 5 s later
 * (and still ours). Not waiting matters: mosh-server spends a second or more
 * trying to say goodbye to a client that is already gone, and teardown should
 * not wait for that. Prints one word: stopped, gone, other (the pid now
 * belongs to something else and is left alone) or unknown (this host cannot
 * tell; nothing was signalled).
 */
export function stopByPidCommand(pid: number, marker: string, started?: string): string {
  const w = checkStarted(started) ?? "''";
  return `${SH} -c ${shellQuote(`${PROC_SH}; p=${checkPid(pid)} w=${w}; ${stopPidScript(marker)}`)}`;
}

/**
 * The sh script behind stopByPidCommand, for a pid already in `$p` (digits
 * only) and its recorded start in `$w` (digits, or empty); needs PROC_SH.
 */
export function stopPidScript(marker: string): string {
  const m = shellQuote(marker);
  // Under /bin/sh (not found via PATH, which a login may narrow), so a fish or csh
  // login shell on the host runs it the same.
  return [
    `alive "$p"; case $? in 1) echo gone; exit 0;; 2) echo unknown; exit 0;; esac`,
    `ours "$p" "$w" ${m}; case $? in 1) echo other; exit 0;; 2) echo unknown; exit 0;; esac`,
    `kill "$p" 2>/dev/null`,
    // `&` ends its own command: no `;` may follow it. The pid is checked again before KILL:
    // it may have been reused by then.
    `(i=0; while kill -0 "$p" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done; ours "$p" "$w" ${m} && kill -9 "$p" 2>/dev/null) </dev/null >/dev/null 2>&1 & echo stopped`,
  ].join('; ');
}

/** unknown: the host could not tell whether that pid is still the process (nothing was signalled). */
export type StopOutcome = 'stopped' | 'gone' | 'other' | 'unknown';

export function parseStop(stdout: string): StopOutcome | undefined {
  const word = stdout.trim().split('\n').pop();
  return word === 'stopped' || word === 'gone' || word === 'other' || word === 'unknown' ? word : undefined;
}

/** Whether a process runs as itself: unknown when the host cannot tell (no /proc, no usable ps). */
export type Liveness = 'alive' | 'dead' | 'unknown';

/** For each pid prints "PID alive", "PID dead" or "PID unknown", checking the marker the same way as stop. */
export function aliveCommand(processes: { pid: number; marker: string; started?: string }[]): string {
  const script = processes
    .map(({ pid, marker, started }) => {
      const p = checkPid(pid);
      const ours = `ours ${p} ${checkStarted(started) ?? "''"} ${shellQuote(marker)}`;
      return `alive ${p}; case $? in 0) ${ours}; case $? in 0) echo "${p} alive";; 1) echo "${p} dead";; *) echo "${p} unknown";; esac;; 1) echo "${p} dead";; *) echo "${p} unknown";; esac`;
    })
    .join('; ');
  return `${SH} -c ${shellQuote(`${PROC_SH}; ${script}`)}`;
}

export function parseAlive(stdout: string): Map<number, Liveness> {
  const out = new Map<number, Liveness>();
  for (const m of stdout.matchAll(/^(\d+) (alive|dead|unknown)$/gm)) out.set(Number(m[1]), m[2] as Liveness);
  return out;
}

// The server process that serves one of moshctl's connections on a hop, and
// ending it once that connection is dead. After a roam or a suspend the
// client's side of the connection vanishes without a FIN, and the server keeps
// its session until TCP keepalive gives up (about 2 h) or forever; moshctl
// learns the pid while the connection works and ends it over the next
// connection it opens.
//
// Which process that is does not depend on the server's process title
// (OpenSSH's `sshd: user@notty`, or a Dropbear fork with the listener's own
// command line): it is the parent of the login shell that ran the learning
// command. That shell and the /bin/sh under it both carry the command's text
// in their command lines, so walking up from $$ past every process whose
// command line holds the marker reaches it, whether the login shell execs the
// command (bash, dash, zsh) or forks it (fish). The start time is kept with
// the pid, so a pid reused since (by the user's own ssh session, say) is never
// signalled; a host without /proc has no exact start (see STARTED in
// processes.ts), and there nothing is learned and nothing ended.
import { SH, shellQuote } from './shell.js';
import { PROC_SH, STARTED } from './processes.js';

export interface SshdSession {
  pid: number;
  /** Its start (field 22 of /proc/PID/stat) when it was learned. */
  started: string;
}

const MARK = 'MOSHCTL-SSHD';
/** In the learning command's text only: no server names a process so. */
const WALK_MARK = 'MOSHCTL-CONNECTION-WALK';

// From this shell up, past every process running the learning command, to the
// first that is not: the session process of this connection. Ends with `p`
// empty when the walk fails (no command lines here, or it reached init).
const WALK = [
  'p=$$ n=0',
  `while [ -n "$p" ] && [ "$n" -lt 16 ]; do a=$(cmdline "$p") || { p=; break; }; case "$a" in *${WALK_MARK}*) ;; *) break;; esac; p=$(ppid "$p"); [ "\${p:-0}" -gt 1 ] || p=; n=$((n+1)); done`,
  '[ "$n" -lt 16 ] || p=',
].join('; ');

/**
 * sh, for a script whose own text carries SESSION_MARK_SH and that has
 * PROC_SH: prints `MOSHCTL-SSHD PID START` for the connection it runs over,
 * or `MOSHCTL-SSHD none`. Sets p, n and s.
 */
export const SESSION_REPORT_SH = [
  WALK,
  `s=; [ -z "$p" ] || s=$(startof "$p")`,
  `if [ -n "$s" ]; then echo "${MARK} $p $s"; else echo "${MARK} none"; fi`,
].join('; ');

/** The words that mark a command's text for the walk (see SESSION_REPORT_SH): a no-op in sh. */
export const SESSION_MARK_SH = `: ${WALK_MARK}`;

/** Prints `MOSHCTL-SSHD PID START` for the connection it runs over, or `MOSHCTL-SSHD none`. */
export function ownSshdCommand(): string {
  const script = [SESSION_MARK_SH, PROC_SH, SESSION_REPORT_SH].join('; ');
  return `${SH} -c ${shellQuote(script)}`;
}

/**
 * `command` (one simple command: a program and its words, such as a
 * `/bin/sh -c SCRIPT ARGS...` line) run after a line saying the connection's
 * session process, as ownSshdCommand would: so a command that runs on a hop
 * anyway spares the hop an exec of its own for that. The words of `command`
 * are handed on as they are (`exec "$0" "$@"`), never quoted a second time:
 * a fish login shell reads `\'` inside single quotes as an escape.
 */
export function withSessionReport(command: string): string {
  const script = [SESSION_MARK_SH, PROC_SH, SESSION_REPORT_SH, 'exec "$0" "$@"'].join('; ');
  return `${SH} -c ${shellQuote(script)} ${command}`;
}

export function parseOwnSshd(stdout: string): SshdSession | undefined {
  const m = new RegExp(`^${MARK} (\\d+) (.+?)\\s*$`, 'm').exec(stdout);
  if (!m) return undefined;
  const started = (m[2] ?? '').trim();
  const pid = Number(m[1]);
  return STARTED.test(started) && pid > 1 ? { pid, started } : undefined;
}

/**
 * What a set-up command reported of its connection's session, from one line:
 * the session, `none` (the host cannot say: no /proc), or undefined for any
 * other line.
 */
export type SessionReport = SshdSession | 'none';

export function parseSessionReport(line: string): SessionReport | undefined {
  if (line.trim() === `${MARK} none`) return 'none';
  return line.startsWith(`${MARK} `) ? parseOwnSshd(line) : undefined;
}

export type EndOutcome = 'ended' | 'gone' | 'other' | 'self' | 'denied';

/**
 * Ends old sessions of moshctl's own connections: each pid is signalled only
 * if it still runs, started when it was learned, and is none of the
 * processes this command runs under: its own session, and above it the
 * server's listener (which every connection descends from). Prints
 * `PID ended|gone|other|self|denied` per pid; denied: the kill was refused
 * (Dropbear's session processes are root's, whoever logged in).
 */
export function endSshdCommand(sessions: readonly SshdSession[]): string {
  const checks = sessions.map(({ pid, started }) => {
    if (!Number.isInteger(pid) || pid < 2) throw new Error(`bug: sshd pid ${pid}`);
    if (!STARTED.test(started)) throw new Error(`bug: sshd start time ${JSON.stringify(started)}`);
    return [
      `o=${pid}`,
      `case "$up" in *" $o "*) echo "$o self";; *) alive "$o"; case $? in 0) if [ "$(startof "$o")" != ${shellQuote(started)} ]; then echo "$o other"; elif kill "$o" 2>/dev/null; then echo "$o ended"; else echo "$o denied"; fi;; 1) echo "$o gone";; *) echo "$o other";; esac;; esac`,
    ].join('; ');
  });
  // Every process this command runs under, up to init: " PID PID ... ".
  const ancestry =
    'up=" " q=$$ n=0; while [ "${q:-0}" -gt 1 ] && [ "$n" -lt 64 ]; do up="$up$q "; q=$(ppid "$q"); n=$((n+1)); done';
  return `${SH} -c ${shellQuote([PROC_SH, ancestry, ...checks].join('; '))}`;
}

export function parseEndSshd(stdout: string): Map<number, EndOutcome> {
  const out = new Map<number, EndOutcome>();
  for (const m of stdout.matchAll(/^(\d+) (ended|gone|other|self|denied)$/gm))
    out.set(Number(m[1]), m[2] as EndOutcome);
  return out;
}

// The sshd process that serves one of moshctl's connections on a hop, and
// ending it once that connection is dead. After a roam or a suspend the
// client's side of the connection vanishes without a FIN, and sshd keeps its
// `sshd: user@notty` session until TCP keepalive gives up (about 2 h) or
// forever; moshctl learns the pid while the connection works and ends it over
// the next connection it opens. The start time is kept with the pid, so a pid
// reused since (by the user's own ssh session, say) is never signalled.
import { SH, shellQuote } from './shell.js';
import { PROC_SH, STARTED } from './processes.js';

export interface SshdSession {
  pid: number;
  /** Its start (field 22 of /proc/PID/stat) when it was learned. */
  started: string;
}

const MARK = 'MOSHCTL-SSHD';

// The nearest ancestor of this shell that is sshd (OpenSSH 9.8+: sshd-session):
// the unprivileged process of this very connection.
const WALK = [
  PROC_SH,
  'p=$$',
  'while [ "${p:-1}" -gt 1 ]; do case "$(ps -o comm= -p "$p" 2>/dev/null)" in sshd|sshd-session) break;; esac; p=$(ps -o ppid= -p "$p" 2>/dev/null | tr -d " "); done',
].join('; ');

/** Prints `MOSHCTL-SSHD PID START` for the connection it runs over, or `MOSHCTL-SSHD none`. */
export function ownSshdCommand(): string {
  const script = `${WALK}; if [ "\${p:-1}" -gt 1 ]; then echo "${MARK} $p $(startof "$p")"; else echo "${MARK} none"; fi`;
  return `${SH} -c ${shellQuote(script)}`;
}

export function parseOwnSshd(stdout: string): SshdSession | undefined {
  const m = new RegExp(`^${MARK} (\\d+) (.+?)\\s*$`, 'm').exec(stdout);
  if (!m) return undefined;
  const started = (m[2] ?? '').trim();
  return STARTED.test(started) ? { pid: Number(m[1]), started } : undefined;
}

/**
 * Ends old sessions of moshctl's own connections: each pid is signalled only
 * if it is still sshd, started when it was learned, and not the session this
 * command itself runs in. Prints `PID ended|gone|other|self` per pid.
 */
export function endSshdCommand(sessions: readonly SshdSession[]): string {
  const checks = sessions.map(({ pid, started }) => {
    if (!Number.isInteger(pid) || pid < 2) throw new Error(`bug: sshd pid ${pid}`);
    if (!STARTED.test(started)) throw new Error(`bug: sshd start time ${JSON.stringify(started)}`);
    return [
      `o=${pid}`,
      `if [ "$o" = "$p" ]; then echo "$o self"`,
      `elif [ -z "$(ps -o comm= -p "$o" 2>/dev/null)" ]; then echo "$o gone"`,
      `elif [ "$(ps -o comm= -p "$o")" != sshd ] && [ "$(ps -o comm= -p "$o")" != sshd-session ]; then echo "$o other"`,
      `elif [ "$(startof "$o")" != ${shellQuote(started)} ]; then echo "$o other"`,
      `elif kill "$o" 2>/dev/null; then echo "$o ended"`,
      `else echo "$o other"; fi`,
    ].join('; ');
  });
  return `${SH} -c ${shellQuote([WALK, ...checks].join('; '))}`;
}

export function parseEndSshd(stdout: string): Map<number, 'ended' | 'gone' | 'other' | 'self'> {
  const out = new Map<number, 'ended' | 'gone' | 'other' | 'self'>();
  for (const m of stdout.matchAll(/^(\d+) (ended|gone|other|self)$/gm))
    out.set(Number(m[1]), m[2] as 'ended' | 'gone' | 'other' | 'self');
  return out;
}

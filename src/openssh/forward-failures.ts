// What OpenSSH says when a forward fails, in the shared terms of
// transport/forward-errors.ts. A refused stdio forward (-W) is explained only
// in its master's log (`channel 3: open failed: connect failed: Connection
// refused`); the mux client itself says no more than "Session open refused by
// peer". Pure: no processes, no files.

import type { OpenFailure } from '../transport/forward-errors.js';

export interface LoggedOpenFailure extends OpenFailure {
  /** Where the line starts in the log: a failure is matched to one open only. */
  offset: number;
}

const OPEN_FAILED =
  /^channel \d+: open failed: (administratively prohibited|connect failed|unknown channel type|resource shortage)(?:: (.*))?$/;

/** Every `open failed` line in `text`, which starts at `start` in the log, in order. */
export function openFailuresIn(text: string, start: number): LoggedOpenFailure[] {
  const found: LoggedOpenFailure[] = [];
  let offset = start;
  for (const raw of text.split('\n')) {
    const m = OPEN_FAILED.exec(raw.replace(/\r$/, ''));
    if (m) {
      const kind =
        m[1] === 'administratively prohibited'
          ? 'prohibited'
          : m[1] === 'connect failed'
            ? 'connect-failed'
            : 'other';
      // For "connect failed", sshd's words say why; "open failed" after "administratively prohibited" says nothing.
      const detail = kind === 'other' ? `${m[1] ?? ''}${m[2] ? `: ${m[2]}` : ''}` : (m[2] ?? '');
      found.push({ kind, detail: detail === 'open failed' ? '' : detail, offset });
    }
    offset += Buffer.byteLength(raw, 'utf8') + 1;
  }
  return found;
}

/**
 * The first failure in `text` (from `start` on) that no other open has
 * claimed. Opens that fail at once each take one line, in the order the
 * server answered; which failed open gets which line is then a best guess,
 * but every refused open gets a reason.
 */
export function claimOpenFailure(text: string, start: number, claimed: Set<number>): OpenFailure | undefined {
  const failure = openFailuresIn(text, start).find((f) => !claimed.has(f.offset));
  if (!failure) return undefined;
  claimed.add(failure.offset);
  return { kind: failure.kind, detail: failure.detail };
}

/** Why `ssh -O forward -R` failed, from its stderr: `remote port forwarding failed for listen port 8080`. */
export function remoteForwardFailure(stderr: string): string | undefined {
  const m = /forwarding request failed: (.*)$/m.exec(stderr);
  if (m?.[1]) return m[1].trim();
  const last = stderr
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^muxclient: master forward request failed$/.test(l))
    .pop();
  return last;
}

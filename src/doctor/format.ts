// doctor's reports as text (one line per check, grouped by hop in route order,
// then the first failure and its fix) and as JSON. Pure.
import { ROUND_TRIPS } from './checks.js';
import { CHECK_LABELS, DOCTOR_VERSION, LOCAL, type CheckResult, type DoctorReport } from './types.js';

const STATUS_TEXT = { ok: 'ok', warn: 'warn', fail: 'FAIL', skip: 'skip' } as const;
const LABEL_WIDTH = Math.max(...Object.values(CHECK_LABELS).map((l) => l.length));

function line(c: CheckResult, withHost: boolean): string {
  const detail = withHost ? `${c.host}: ${c.detail}` : c.detail;
  return `  ${STATUS_TEXT[c.status].padEnd(4)}  ${CHECK_LABELS[c.check].padEnd(LABEL_WIDTH)}  ${detail}`;
}

export function formatReport(r: DoctorReport): string {
  const out = [`${r.target}: local → ${r.route.join(' → ')} (transport ${r.transport})`];
  for (const host of [LOCAL, ...r.route]) {
    out.push(host);
    for (const c of r.checks) if (c.host === host && !ROUND_TRIPS.includes(c.check)) out.push(line(c, false));
  }
  // The round trips cross every hop: a group of their own, each naming the host it is about.
  out.push('round trip');
  for (const c of r.checks) if (ROUND_TRIPS.includes(c.check)) out.push(line(c, true));
  // Warnings do not fail doctor; their fixes are said all the same.
  for (const w of r.checks.filter((c) => c.status === 'warn')) {
    out.push(`warning: ${CHECK_LABELS[w.check]} of ${w.host}: ${w.detail}`);
    if (w.hint) out.push(`  hint: ${w.hint}`);
  }
  const f = r.firstFailure;
  if (f) {
    out.push(`first failure: ${CHECK_LABELS[f.check]} of ${f.host}: ${f.detail}`);
    if (f.hint) out.push(`  hint: ${f.hint}`);
  } else out.push('all checks passed');
  return `${out.join('\n')}\n`;
}

/** `doctor NAME --json`: the report itself; without NAME, every host's under `targets`. */
export function reportJson(reports: readonly DoctorReport[], single: boolean): string {
  const data = single && reports[0] ? reports[0] : { version: DOCTOR_VERSION, targets: reports };
  return `${JSON.stringify(data, null, 2)}\n`;
}

import type { PortRange } from './types.js';

export type PortRangeResult = { ok: true; range: PortRange } | { ok: false; message: string; hint: string };

const HINT = 'write a port like 60001 or a range like 60000-61000 (low-high, within 1-65535)';

/** Parses `60000-61000`, `60001` or 60001; every way it can be wrong gets its own message. */
export function parsePortRange(value: unknown): PortRangeResult {
  if (value === null || value === undefined || (typeof value === 'string' && value.trim() === '')) {
    return { ok: false, message: 'the port range is empty', hint: HINT };
  }
  if (typeof value === 'number') return checkBounds(value, value);
  if (typeof value !== 'string') {
    return {
      ok: false,
      message: `the port range must be a string or number, not ${typeof value}`,
      hint: HINT,
    };
  }
  const m = /^\s*(\d+)\s*(?:[-:]\s*(\d+)\s*)?$/.exec(value);
  if (!m) return { ok: false, message: `"${value}" is not a port range`, hint: HINT };
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  return checkBounds(from, to);
}

function checkBounds(from: number, to: number): PortRangeResult {
  for (const p of [from, to]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) {
      return { ok: false, message: `port ${p} is outside 1-65535`, hint: HINT };
    }
  }
  if (from > to) {
    return { ok: false, message: `the port range ${from}-${to} is reversed`, hint: `write ${to}-${from}` };
  }
  return { ok: true, range: { from, to } };
}

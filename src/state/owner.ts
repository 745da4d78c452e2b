// The `up` process that owns a session, if it still runs on this machine.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { SessionRecord } from './record.js';

export function ownerAlive(record: SessionRecord): boolean {
  if (record.machine !== hostname()) return false;
  try {
    process.kill(record.pid, 0);
  } catch {
    return false;
  }
  // A pid reused by an unrelated program must not be signalled.
  try {
    return readFileSync(`/proc/${record.pid}/cmdline`, 'utf8').includes('moshctl');
  } catch {
    return process.platform !== 'linux';
  }
}

// Whether the `up` process that owns a session still runs, decided from what
// its record says (machine, boot, pid, start time) against what this machine
// says now. Only a process that matches all of it is ever signalled: pids are
// reused after a reboot and by other programs, and a state folder on a shared
// home is read by several machines.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { SessionRecord } from './record.js';

/** What this machine says about itself and its processes; tests pass a fake. */
export interface ProcessProbe {
  hostname(): string;
  /** Changes at every boot; undefined where the system has none (not Linux). */
  bootId(): string | undefined;
  /** kill(pid, 0): 'foreign' when a process of another user has the pid (EPERM). */
  signal0(pid: number): 'ours' | 'foreign' | 'none';
  /** From /proc/PID/stat: state letter (field 3) and start time (field 22); undefined where unavailable. */
  stat(pid: number): { state: string; startTime: string } | undefined;
  /** /proc/PID/cmdline, NULs as spaces ('' when the pid is gone); undefined where there is no /proc. */
  cmdline(pid: number): string | undefined;
}

export type Owner =
  /** The `up` process runs here: signal it and it tears down itself. */
  | { kind: 'alive'; pid: number }
  /** Recorded by another machine (a shared home): nothing here can tell whether it runs. */
  | { kind: 'other-machine'; machine: string }
  /** `up --no-connect` on this machine: no process owns the session. */
  | { kind: 'detached' }
  /** The `up` process is gone from this machine: its session crashed. `why` says how that is known. */
  | { kind: 'gone'; why: string };

export function owner(record: SessionRecord, probe: ProcessProbe = systemProbe): Owner {
  if (record.machine !== probe.hostname()) return { kind: 'other-machine', machine: record.machine };
  if (record.detached) return { kind: 'detached' };
  const pid = record.pid;
  const bootId = probe.bootId();
  if (record.bootId !== undefined && bootId !== undefined && record.bootId !== bootId)
    return { kind: 'gone', why: 'this machine has restarted since: its boot id changed' };
  const signal = probe.signal0(pid);
  if (signal === 'none') return { kind: 'gone', why: `pid ${pid} no longer runs` };
  if (signal === 'foreign') return { kind: 'gone', why: `pid ${pid} belongs to another user now` };
  const stat = probe.stat(pid);
  if (stat?.state === 'Z') return { kind: 'gone', why: `pid ${pid} has exited` };
  if (record.startTime !== undefined && stat !== undefined) {
    return stat.startTime === record.startTime
      ? { kind: 'alive', pid }
      : { kind: 'gone', why: `pid ${pid} is another process now, started at another time` };
  }
  // A record from before version 3, or a system without start times: the command line must say moshctl.
  const cmdline = probe.cmdline(pid);
  if (cmdline === undefined) return { kind: 'alive', pid };
  return cmdline.includes('moshctl')
    ? { kind: 'alive', pid }
    : { kind: 'gone', why: `pid ${pid} runs another program now` };
}

/**
 * Whether the cleanup an `up` left behind (record.cleanup, a detached `moshctl
 * down --id`) still runs, judged as owner() judges the `up` itself;
 * undefined when the record names none.
 */
export function cleanupOwner(record: SessionRecord, probe: ProcessProbe = systemProbe): Owner | undefined {
  const c = record.cleanup;
  if (!c) return undefined;
  if (c.pid === undefined) return { kind: 'gone', why: 'it did not start' };
  const { startTime: _, ...rest } = record;
  return owner(
    { ...rest, detached: false, pid: c.pid, ...(c.startTime ? { startTime: c.startTime } : {}) },
    probe,
  );
}

/** What `up` records about its own process, so `owner()` can tell it from a later one with its pid. */
export function processIdentity(
  pid: number = process.pid,
  probe: ProcessProbe = systemProbe,
): Pick<SessionRecord, 'machine' | 'bootId' | 'startTime'> {
  const bootId = probe.bootId();
  const startTime = probe.stat(pid)?.startTime;
  return {
    machine: probe.hostname(),
    ...(bootId !== undefined ? { bootId } : {}),
    ...(startTime !== undefined ? { startTime } : {}),
  };
}

/** The state letter and start time of a /proc/PID/stat line. */
export function parseStat(text: string): { state: string; startTime: string } | undefined {
  // Field 2 (comm) is in parentheses and may itself hold spaces and ')': the rest starts after the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const state = rest[0];
  const startTime = rest[22 - 3];
  if (!state || !startTime || !/^\d+$/.test(startTime)) return undefined;
  return { state, startTime };
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

let procfs: boolean | undefined;

export const systemProbe: ProcessProbe = {
  hostname,
  bootId: () => readProc('/proc/sys/kernel/random/boot_id')?.trim() || undefined,
  signal0(pid) {
    // pid 0 and negative pids name process groups: a damaged record must never reach kill() with one.
    if (!Number.isSafeInteger(pid) || pid <= 0) return 'none';
    try {
      process.kill(pid, 0);
      return 'ours';
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM' ? 'foreign' : 'none';
    }
  },
  stat(pid) {
    const text = readProc(`/proc/${pid}/stat`);
    return text === undefined ? undefined : parseStat(text);
  },
  cmdline(pid) {
    procfs ??= existsSync('/proc/self/cmdline');
    if (!procfs) return undefined;
    return (readProc(`/proc/${pid}/cmdline`) ?? '').replaceAll('\0', ' ');
  },
};

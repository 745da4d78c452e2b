// What the benchmarks read about a process from /proc: its resident memory,
// its CPU time and whether it still runs. Lab namespaces share the machine's
// pid namespace, so a pid from any lab host reads here too.
import { readFileSync, readlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const procStatus = (pid) => readFileSync(`/proc/${pid}/status`, 'utf8');

/** VmRSS in kB (NaN when the process is gone). */
export const rssKb = (pid) => {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(procStatus(pid))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
};

/** utime + stime in clock ticks (fields 14 and 15 of /proc/PID/stat). */
export const cpuTicks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** Running and not a zombie. */
export const isRunning = (pid) => {
  try {
    return !/^State:\s+[ZX]/m.test(procStatus(pid));
  } catch {
    return false;
  }
};

/** The command line, spaces between arguments ('' when gone). */
export const cmdline = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
};

/** Direct children of a process: the lab's own helper. */
export { childrenOf } from '../../dist/lab/index.js';

/** The parent's pid (0 when gone). */
export const parentOf = (pid) => {
  try {
    return Number(/^PPid:\s+(\d+)/m.exec(procStatus(pid))?.[1] ?? 0);
  } catch {
    return 0;
  }
};

/** The program a process runs ('?' when gone). */
export const exeOf = (pid) => {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '?';
  }
};

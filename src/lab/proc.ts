// Process helpers for the lab. Everything the lab starts is remembered as a
// (pid, start time) pair: a pid alone can be reused by an unrelated process
// after ours exits, and the lab must never signal a stranger.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface RunOptions {
  /** Kill the command (SIGKILL) after this many ms. Default 10 s. */
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with the pid as soon as the process exists (so a lab can track it). */
  onPid?: (pid: number) => void;
  onExit?: (pid: number) => void;
}

/** Run a command to completion; never rejects for a non-zero exit (callers decide). */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) throw new Error('run: empty argv');
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const pid = child.pid;
    if (pid !== undefined) opts.onPid?.(pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 10_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pid !== undefined) opts.onExit?.(pid);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    // A command that does not read stdin may close it before we write: ignore EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run(), but throws with the command's stderr when it fails. */
export async function mustRun(argv: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? 'timed out' : `exit ${r.code ?? r.signal}`;
    throw new Error(`${argv.join(' ')}: ${why}: ${r.stderr.trim()}`);
  }
  return r.stdout;
}

/**
 * The kernel's start time of a process (clock ticks since boot, field 22 of
 * /proc/PID/stat), or undefined if it does not exist or is a zombie.
 */
export function processStartTime(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined;
  const start = Number(fields[19]);
  return Number.isFinite(start) ? start : undefined;
}

export interface ProcRef {
  pid: number;
  /** From processStartTime(); undefined means "unknown, trust the pid". */
  startTime?: number;
}

/** Direct children of a process (Linux /proc); none when it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export function refOf(pid: number): ProcRef {
  return { pid, startTime: processStartTime(pid) };
}

/** Alive and still the same process we recorded (not a reused pid, not a zombie). */
export function isAlive(ref: ProcRef): boolean {
  const now = processStartTime(ref.pid);
  if (now === undefined) return false;
  return ref.startTime === undefined || ref.startTime === now;
}

function signal(ref: ProcRef, sig: NodeJS.Signals): void {
  if (!isAlive(ref)) return;
  try {
    process.kill(ref.pid, sig);
  } catch {
    // Gone between the check and the kill: that is what we wanted.
  }
}

/** SIGTERM, then SIGKILL for whatever is still alive after graceMs; resolves when all are dead. */
export async function stopAll(refs: readonly ProcRef[], graceMs = 1000): Promise<ProcRef[]> {
  for (const r of refs) signal(r, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && refs.some(isAlive)) await sleep(25);
  for (const r of refs) signal(r, 'SIGKILL');
  const hard = Date.now() + 3000;
  while (Date.now() < hard && refs.some(isAlive)) await sleep(25);
  return refs.filter(isAlive);
}

// A lab is recorded on disk before it creates anything, so that a lab whose
// owner crashed (SIGKILL, a hung test runner killed by CI) can still be found
// and removed later by anyone: its namespaces, processes and files. Each
// namespace's /etc/netns/<ns> dir (names.ts) is recorded by the namespace's name.

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listEtcNetns, removeEtcNetns } from './names.js';
import { isAlive, run, stopAll, type ProcRef } from './proc.js';

export const DEFAULT_PREFIX = 'mctl';

export interface LabRecord {
  runId: string;
  prefix: string;
  /** The process that owns the lab; null for a lab left up on purpose (`lab up`). */
  owner: ProcRef | null;
  dir: string;
  namespaces: string[];
  /** Processes the lab started itself; some (tmux) live outside its namespaces. */
  pids: ProcRef[];
  createdAt: string;
}

export function registryDir(): string {
  return process.env.MOSHCTL_LAB_REGISTRY ?? '/run/moshctl-lab';
}

function recordPath(runId: string): string {
  return join(registryDir(), `${runId}.json`);
}

export function writeRecord(rec: LabRecord): void {
  mkdirSync(registryDir(), { recursive: true, mode: 0o700 });
  // Write then rename, so a reader never sees half a record.
  const tmp = `${recordPath(rec.runId)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, recordPath(rec.runId));
}

export function removeRecord(runId: string): void {
  rmSync(recordPath(runId), { force: true });
}

export function readRecords(): LabRecord[] {
  let names: string[];
  try {
    names = readdirSync(registryDir());
  } catch {
    return [];
  }
  const out: LabRecord[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(readFileSync(join(registryDir(), name), 'utf8')) as LabRecord);
    } catch {
      // A record being written right now, or garbage: not ours to judge here.
    }
  }
  return out;
}

/**
 * Runs `fn` holding the registry's lock, an flock(1) on <registry>/lock held
 * by a helper process until `fn` settles. Lab.create() in test files running
 * side by side each clean up stale labs: the lock lets one at a time judge and
 * remove them, and lets a test stage a stale lab and look at it before anyone
 * else removes it. The helper ends when this process does, however it ends
 * (its stdin closes), so a crashed owner never keeps the lock.
 */
export async function withRegistryLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(registryDir(), { recursive: true, mode: 0o700 });
  const holder = spawn(
    'flock',
    [
      '--exclusive',
      '--timeout',
      '120',
      join(registryDir(), 'lock'),
      'sh',
      '-c',
      'echo locked; exec cat >/dev/null',
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  holder.stdin.on('error', () => undefined); // EPIPE if the helper is gone already
  const exited = new Promise<void>((resolve) => holder.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let err = '';
    holder.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('locked\n')) resolve();
    });
    holder.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    holder.on('error', reject);
    holder.on('close', (code) =>
      reject(new Error(`flock ${join(registryDir(), 'lock')}: exit ${code}: ${err.trim()}`)),
    );
  });
  try {
    return await fn();
  } finally {
    holder.stdin.end();
    await exited;
  }
}

/** A lab is stale when it has an owner and that owner is gone. */
export function isStale(rec: LabRecord): boolean {
  return rec.owner !== null && !isAlive(rec.owner);
}

/** Names of all network namespaces (`ip netns list` prints "name (id: N)"). */
export async function listNamespaces(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

export function labNamespacePattern(prefix: string): RegExp {
  const p = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${p}-[0-9a-f]{6}-`);
}

export async function pidsInNamespace(ns: string): Promise<number[]> {
  const r = await run(['ip', 'netns', 'pids', ns]);
  if (r.code !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/**
 * Remove everything a lab made. Safe to call on a half-built lab and to call
 * twice: every step tolerates things already being gone. Returns what could
 * not be removed (empty when all went well).
 */
export async function teardown(rec: LabRecord): Promise<string[]> {
  const problems: string[] = [];
  const survivors = await stopAll(rec.pids, 500);
  for (const s of survivors) problems.push(`pid ${s.pid} survived SIGKILL`);
  const existing = new Set(await listNamespaces());
  for (const ns of rec.namespaces) {
    if (!existing.has(ns)) continue;
    // Processes the lab never saw (sshd session children, mosh-server) still
    // hold the namespace; loop because a dying parent may have just forked.
    for (let round = 0; round < 5; round++) {
      const pids = await pidsInNamespace(ns);
      if (pids.length === 0) break;
      const left = await stopAll(
        pids.map((pid) => ({ pid })),
        round === 0 ? 300 : 0,
      );
      if (round === 4) for (const s of left) problems.push(`pid ${s.pid} in ${ns} survived`);
    }
    // Deleting the namespace also removes its interfaces, veth peers and nft tables.
    const r = await run(['ip', 'netns', 'del', ns]);
    if (r.code !== 0) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  // After the namespaces: only processes inside them could still be using these files.
  for (const ns of rec.namespaces) {
    try {
      removeEtcNetns(ns);
    } catch (err) {
      problems.push(`remove /etc/netns/${ns}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  rmSync(rec.dir, { recursive: true, force: true });
  if (problems.length === 0) removeRecord(rec.runId);
  return problems;
}

/**
 * Remove labs whose owner died, and namespaces and /etc/netns dirs carrying
 * the lab prefix that no record claims (a record is always written before its
 * namespaces and their dirs, so an unclaimed one belongs to nobody). Returns
 * the run ids / names removed. One at a time on this machine (withRegistryLock):
 * test files running side by side all call it from Lab.create().
 */
export function cleanupStale(prefix = DEFAULT_PREFIX): Promise<string[]> {
  return withRegistryLock(() => removeStale(prefix));
}

async function removeStale(prefix: string): Promise<string[]> {
  const removed: string[] = [];
  const records = readRecords();
  for (const rec of records) {
    if (!isStale(rec)) continue;
    await teardown(rec);
    removed.push(rec.runId);
  }
  // List namespaces before reading records: any namespace listed then had its
  // record written earlier, so a lab being created right now is never taken for an orphan.
  const namespaces = await listNamespaces();
  const etcDirs = listEtcNetns();
  const claimed = new Set(readRecords().flatMap((r) => r.namespaces));
  const pattern = labNamespacePattern(prefix);
  // A dir without its namespace (a crash between the two) is an orphan all the same.
  const orphans = new Set([...namespaces, ...etcDirs].filter((ns) => pattern.test(ns) && !claimed.has(ns)));
  for (const ns of orphans) {
    await teardown({
      runId: `orphan-${ns}`,
      prefix,
      owner: null,
      dir: '/nonexistent-moshctl-lab-dir',
      namespaces: [ns],
      pids: [],
      createdAt: '',
    });
    removed.push(ns);
  }
  return removed;
}

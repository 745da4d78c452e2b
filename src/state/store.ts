// One file per session under the user's state directory, mode 0600, written
// atomically (temp file + rename) so a reader never sees half a record and two
// `up` of the same name never write the same file.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RECORD_VERSION, type SessionRecord } from './record.js';
import { recordProblems } from './validate.js';

export function stateDir(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'moshctl', 'sessions');
}

export class SessionStore {
  constructor(readonly dir: string) {}

  newId(name: string): string {
    return `${name}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  }

  write(record: SessionRecord): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const file = this.file(record.id);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, file);
  }

  /** Removes a session's record, and the log of a cleanup it had. */
  remove(id: string): void {
    rmSync(this.file(id), { force: true });
    rmSync(this.logFile(id), { force: true });
  }

  /**
   * Where the cleanup an `up` leaves behind (record.cleanup) writes: beside
   * the record, named by its id, so a record can never name another file to remove.
   */
  logFile(id: string): string {
    return this.file(id).replace(/\.json$/, '.log');
  }

  /** Every usable record; a file that is not one is reported with why, never fatal. */
  list(): { records: SessionRecord[]; unreadable: UnreadableRecord[] } {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch {
      return { records: [], unreadable: [] };
    }
    const records: SessionRecord[] = [];
    const unreadable: UnreadableRecord[] = [];
    for (const n of names.sort()) {
      const file = join(this.dir, n);
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        // Removed by a `down` or an ending `up` since the folder was listed: not a problem.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        unreadable.push({ file, why: `cannot be read (${(e as Error).message})`, newer: false });
        continue;
      }
      const parsed = parseRecord(text, n);
      if ('record' in parsed) records.push(parsed.record);
      else unreadable.push({ file, ...parsed });
    }
    return { records, unreadable };
  }

  private file(id: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(id)) throw new Error(`bug: bad session id ${id}`);
    return join(this.dir, `${id}.json`);
  }
}

/** A state file that is not a record this moshctl can use. */
export interface UnreadableRecord {
  file: string;
  /** What is wrong with it, in a few words. */
  why: string;
  /** Its version is above RECORD_VERSION: a newer moshctl wrote it and can still stop its session. */
  newer: boolean;
  /** The session's name and config files, when they could be read: `down NAME` then knows it was asked about it. */
  name?: string;
  configFiles?: string[];
}

/** One line for status and down: the file, what is wrong, and the likely reason. */
export function describeUnreadable(u: UnreadableRecord): string {
  return `${u.file}: ${u.why} (written by a newer moshctl?)`;
}

/** A record from a file's text, upgraded to RECORD_VERSION, or why it cannot be one. */
export function parseRecord(
  text: string,
  fileName: string,
): { record: SessionRecord } | Omit<UnreadableRecord, 'file'> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { why: `not JSON (${(e as Error).message})`, newer: false };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { why: 'not a session record (no JSON object)', newer: false };
  const raw = value as Record<string, unknown>;
  const known = {
    ...(typeof raw.name === 'string' ? { name: raw.name } : {}),
    ...(Array.isArray(raw.configFiles) && raw.configFiles.every((f) => typeof f === 'string')
      ? { configFiles: raw.configFiles }
      : {}),
  };
  const version = raw.version;
  if (!Number.isSafeInteger(version) || (version as number) < 1)
    return {
      why: `no record version (version: ${JSON.stringify(version) ?? 'missing'})`,
      newer: false,
      ...known,
    };
  if ((version as number) > RECORD_VERSION) {
    return {
      why: `record version ${version as number}; this moshctl reads versions up to ${RECORD_VERSION}`,
      newer: true,
      ...known,
    };
  }
  const record = upgrade(raw);
  const problems = recordProblems(record);
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    return { why: `damaged: ${problems[0] ?? ''}${more}`, newer: false, ...known };
  }
  const r = record as unknown as SessionRecord;
  // `down` removes a record by its id: one that names another file would never go away.
  if (`${r.id}.json` !== fileName)
    return { why: `damaged: its id "${r.id}" does not match its file name`, newer: false, ...known };
  return { record: r };
}

/** Brings an older record to RECORD_VERSION (its shape is checked afterwards). */
function upgrade(raw: Record<string, unknown>): Record<string, unknown> {
  const r = raw.version === 1 ? fromVersion1(raw) : raw;
  // 2 → 3 added bootId and startTime; without them `owner()` checks the pid's command line, as before.
  // 3 → 4 added keeper and cleanup, both optional: nothing to change.
  return { ...r, version: RECORD_VERSION };
}

/** A record written by moshctl 0.1 (version 1): one identity file and one known_hosts per hop, ssh2 only. */
function fromVersion1(r: Record<string, unknown>): Record<string, unknown> {
  if (!Array.isArray(r.route)) return r;
  const route = r.route.map((h: unknown) => {
    if (typeof h !== 'object' || h === null) return h;
    const old = h as { identity_file?: string; known_hosts?: string; address?: string };
    const { identity_file, known_hosts, ...rest } = old;
    return {
      ...rest,
      ssh_name: old.address,
      identity_files: identity_file ? [identity_file] : [],
      certificate_files: [],
      known_hosts: known_hosts ? [known_hosts] : [],
      global_known_hosts: [],
      host_key_alias: undefined,
      host_key_policy: 'strict' as const,
      identity_agent: undefined,
      connect_timeout: 10,
      server_alive_interval: 15,
      proxy_command: undefined,
      ssh_client: 'ssh2' as const,
      hash_known_hosts: false,
    };
  });
  return { ...r, route };
}

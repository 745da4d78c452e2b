// One file per session under the user's state directory, mode 0600, written
// atomically (temp file + rename) so a reader never sees half a record and two
// `up` of the same name never write the same file.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SshHost } from '../config/types.js';
import { RECORD_VERSION, type SessionRecord } from './record.js';

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

  remove(id: string): void {
    rmSync(this.file(id), { force: true });
  }

  /** Every readable record; a damaged file is reported, not fatal. */
  list(): { records: SessionRecord[]; damaged: string[] } {
    let names: string[];
    try {
      names = readdirSync(this.dir).filter((n) => n.endsWith('.json'));
    } catch {
      return { records: [], damaged: [] };
    }
    const records: SessionRecord[] = [];
    const damaged: string[] = [];
    for (const n of names.sort()) {
      try {
        const r = upgrade(JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as SessionRecord);
        if (r.version !== RECORD_VERSION || typeof r.id !== 'string') throw new Error('unknown format');
        records.push(r);
      } catch {
        damaged.push(join(this.dir, n));
      }
    }
    return { records, damaged };
  }

  private file(id: string): string {
    if (!/^[A-Za-z0-9._-]+$/.test(id)) throw new Error(`bug: bad session id ${id}`);
    return join(this.dir, `${id}.json`);
  }
}

/** A record written by moshctl 0.1 (version 1): one identity file and one known_hosts per hop, ssh2 only. */
function upgrade(r: SessionRecord): SessionRecord {
  if ((r.version as number) !== 1 || !Array.isArray(r.route)) return r;
  const route = r.route.map((h) => {
    const old = h as unknown as { identity_file?: string; known_hosts?: string } & SshHost;
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
  return { ...r, version: RECORD_VERSION, route };
}

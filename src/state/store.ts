// One file per session under the user's state directory, mode 0600, written
// atomically (temp file + rename) so a reader never sees half a record and two
// `up` of the same name never write the same file.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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
        const r = JSON.parse(readFileSync(join(this.dir, n), 'utf8')) as SessionRecord;
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

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionStore, stateDir } from '../../src/state/store.js';
import type { SessionRecord } from '../../src/state/record.js';
import { tempTree } from './helpers.js';

const record = (id: string): SessionRecord => ({
  version: 2,
  id,
  name: 'box',
  configFiles: ['/x/moshproxy.yaml'],
  createdAt: '2026-01-01T00:00:00Z',
  pid: 1,
  machine: 'm',
  route: [],
  relays: [],
  networkTimeout: 60,
});

describe('session store', () => {
  it('lives under XDG_STATE_HOME, else ~/.local/state', () => {
    expect(stateDir({ XDG_STATE_HOME: '/s', HOME: '/h' })).toBe('/s/moshctl/sessions');
    expect(stateDir({ HOME: '/h' })).toBe('/h/.local/state/moshctl/sessions');
  });

  it('writes records mode 0600 in a 0700 folder, atomically, one file per session', () => {
    const dir = join(tempTree({}), 'sessions');
    const store = new SessionStore(dir);
    const a = store.newId('box');
    const b = store.newId('box');
    expect(a).not.toBe(b);
    store.write(record(a));
    store.write(record(b));
    store.write({ ...record(a), relays: [{ host: 'j', pid: 2, port: 3, runtime: 'python3' }] });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual([`${a}.json`, `${b}.json`].sort());
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    const { records, damaged } = store.list();
    expect(damaged).toEqual([]);
    expect(records.find((r) => r.id === a)?.relays).toHaveLength(1);
    store.remove(a);
    store.remove(a);
    expect(store.list().records.map((r) => r.id)).toEqual([b]);
  });

  it('reports a damaged file instead of failing', () => {
    const dir = tempTree({ 'bad.json': '{', 'old.json': '{"version": 9, "id": "x"}' });
    expect(new SessionStore(dir).list()).toEqual({
      records: [],
      damaged: [join(dir, 'bad.json'), join(dir, 'old.json')],
    });
  });

  it('refuses an id that could escape the folder', () => {
    expect(() => new SessionStore('/tmp/x').write(record('../evil'))).toThrow(/bad session id/);
  });
});

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeUnreadable, parseRecord, SessionStore, stateDir } from '../../src/state/store.js';
import { RECORD_VERSION, type SessionRecord } from '../../src/state/record.js';
import type { SshHost } from '../../src/config/types.js';
import { tempTree } from './helpers.js';

const record = (id: string): SessionRecord => ({
  version: RECORD_VERSION,
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
    store.write({
      ...record(a),
      route: [{ ...hop, name: 'j' }],
      relays: [{ host: 'j', pid: 2, port: 3, runtime: 'python3' }],
    });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual([`${a}.json`, `${b}.json`].sort());
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    const { records, unreadable } = store.list();
    expect(unreadable).toEqual([]);
    expect(records.find((r) => r.id === a)?.relays).toHaveLength(1);
    store.remove(a);
    store.remove(a);
    expect(store.list().records.map((r) => r.id)).toEqual([b]);
  });

  it('reports a damaged or newer file instead of failing, and skips one removed meanwhile', () => {
    const dir = tempTree({ 'bad.json': '{', 'new.json': '{"version": 9, "id": "x", "name": "box"}' });
    expect(new SessionStore(dir).list()).toEqual({
      records: [],
      unreadable: [
        { file: join(dir, 'bad.json'), why: expect.stringMatching(/^not JSON \(/) as string, newer: false },
        {
          file: join(dir, 'new.json'),
          why: 'record version 9; this moshctl reads versions up to 5',
          newer: true,
          name: 'box',
        },
      ],
    });
  });

  it('refuses an id that could escape the folder', () => {
    expect(() => new SessionStore('/tmp/x').write(record('../evil'))).toThrow(/bad session id/);
  });
});

const hop: SshHost = {
  name: 'jump',
  ssh_name: 'jump.example',
  address: 'jump.example',
  port: 22,
  user: 'me',
  identity_files: [],
  certificate_files: [],
  known_hosts: [],
  global_known_hosts: [],
  host_key_alias: undefined,
  host_key_policy: 'strict',
  connect_timeout: 10,
  server_alive_interval: 15,
  identity_agent: undefined,
  proxy_command: undefined,
  ssh_client: 'ssh2',
  hash_known_hosts: false,
};

const v2 = {
  version: 2,
  id: 'box-1',
  name: 'box',
  configFiles: ['/x/moshproxy.yaml'],
  createdAt: '2026-01-01T00:00:00Z',
  pid: 42,
  machine: 'm',
  route: [hop],
  server: { host: 'jump', pid: 7, port: 60001 },
  relays: [],
  networkTimeout: 60,
};

/** The line status and down print for a file of this content named box-1.json. */
function why(content: unknown): string {
  const r = parseRecord(typeof content === 'string' ? content : JSON.stringify(content), 'box-1.json');
  return 'record' in r ? 'readable' : describeUnreadable({ file: 'box-1.json', ...r });
}

describe('record versions', () => {
  it('reads a version 2 record as the current version, without boot id and start time', () => {
    const r = parseRecord(JSON.stringify(v2), 'box-1.json');
    expect(r).toEqual({ record: { ...v2, version: RECORD_VERSION } });
  });

  it('reads a version 3 record as version 5 (4 and 5 only added optional fields)', () => {
    const v3 = { ...v2, version: 3, bootId: 'b', startTime: '12' };
    expect(parseRecord(JSON.stringify(v3), 'box-1.json')).toEqual({ record: { ...v3, version: 5 } });
  });

  it('reads the keeper of a mosh-server being started, and the cleanup an up left', () => {
    const v4 = {
      ...v2,
      version: 4,
      keeper: { host: 'jump', pid: 7, started: '99' },
      cleanup: { pid: 8, startTime: '100', since: '2026-12-06T00:00:00.000Z' },
    };
    expect(parseRecord(JSON.stringify(v4), 'box-1.json')).toEqual({ record: { ...v4, version: 5 } });
  });

  it('reads what a running up says of its forwards, agent, chain and path', () => {
    const v5 = {
      ...v2,
      version: 5,
      forwards: [{ text: '-L 8080:localhost:80', listening: true, open: 1, total: 3, broken: 1, refused: 0 }],
      agent: { host: 'jump', socket: '~/.moshctl/agent/box.sock', up: false, lastError: 'chain down' },
      chain: { up: true, reconnects: 2 },
      path: { via: 'tcp', since: '2026-12-06T00:00:00.000Z', changes: 3, noReturn: 'no relay' },
    };
    expect(parseRecord(JSON.stringify(v5), 'box-1.json')).toEqual({ record: v5 });
    // A path it does not know is refused, naming the field.
    expect(parseRecord(JSON.stringify({ ...v5, path: { ...v5.path, via: 'quic' } }), 'x.json')).toEqual(
      expect.objectContaining({ why: expect.stringContaining('path.via') as unknown }),
    );
    expect(
      parseRecord(JSON.stringify({ ...v5, agent: { ...v5.agent, host: 'elsewhere' } }), 'x.json'),
    ).toEqual(expect.objectContaining({ why: expect.stringContaining('elsewhere') as unknown }));
  });

  it('upgrades a version 1 record: one identity file and known_hosts per hop, ssh2', () => {
    const { ssh_name: _, identity_files: __, known_hosts: ___, ...old } = hop;
    const v1 = { ...v2, version: 1, route: [{ ...old, identity_file: '/k/id', known_hosts: '/k/kh' }] };
    const r = parseRecord(JSON.stringify(v1), 'box-1.json');
    expect('record' in r && r.record.route[0]).toMatchObject({
      ssh_name: 'jump.example',
      identity_files: ['/k/id'],
      known_hosts: ['/k/kh'],
      ssh_client: 'ssh2',
    });
    expect('record' in r && r.record.version).toBe(RECORD_VERSION);
  });

  it('keeps a newer record unread, with its name for down NAME', () => {
    expect(parseRecord(JSON.stringify({ ...v2, version: 6 }), 'box-1.json')).toEqual({
      why: 'record version 6; this moshctl reads versions up to 5',
      newer: true,
      name: 'box',
      configFiles: ['/x/moshproxy.yaml'],
    });
  });

  it('says what is wrong with a damaged record', () => {
    expect([
      why(v2),
      why('{"version": 2, "id": "box-1"'),
      why('[1]'),
      why({ ...v2, version: undefined }),
      why({ ...v2, version: '2' }),
      why({ ...v2, relays: 'none' }),
      why({ ...v2, pid: 0 }),
      why({ ...v2, pid: -1, machine: 7 }),
      why({ ...v2, route: [{ ...hop, port: '22' }] }),
      why({ ...v2, route: [{ ...hop, ssh_client: 'putty' }] }),
      why({ ...v2, server: { host: 'elsewhere', pid: 7, port: 60001 } }),
      why({ ...v2, version: 3, startTime: 12 }),
      why({ ...v2, keeper: { host: 'elsewhere', pid: 7 } }),
      why({ ...v2, cleanup: { pid: 0 } }),
      why({ ...v2, id: 'box-2' }),
      why({ ...v2, id: '../../x' }),
    ]).toMatchInlineSnapshot(`
      [
        "readable",
        "box-1.json: not JSON (Expected ',' or '}' after property value in JSON at position 28) (written by a newer moshctl?)",
        "box-1.json: not a session record (no JSON object) (written by a newer moshctl?)",
        "box-1.json: no record version (version: missing) (written by a newer moshctl?)",
        "box-1.json: no record version (version: "2") (written by a newer moshctl?)",
        "box-1.json: damaged: relays: expected a list, got "none" (written by a newer moshctl?)",
        "box-1.json: damaged: pid: expected a pid (a whole number > 0), got 0 (written by a newer moshctl?)",
        "box-1.json: damaged: pid: expected a pid (a whole number > 0), got -1 (and 1 more) (written by a newer moshctl?)",
        "box-1.json: damaged: route[0].port: expected a port, got "22" (written by a newer moshctl?)",
        "box-1.json: damaged: route[0].ssh_client: expected "ssh2" or "openssh", got "putty" (written by a newer moshctl?)",
        "box-1.json: damaged: a process on elsewhere, which is not on its route (written by a newer moshctl?)",
        "box-1.json: damaged: startTime: expected clock ticks (digits), got 12 (written by a newer moshctl?)",
        "box-1.json: damaged: a process on elsewhere, which is not on its route (written by a newer moshctl?)",
        "box-1.json: damaged: cleanup.pid: expected a pid (a whole number > 0), got 0 (and 1 more) (written by a newer moshctl?)",
        "box-1.json: damaged: its id "box-2" does not match its file name (written by a newer moshctl?)",
        "box-1.json: damaged: id: expected a session id (letters, digits, ".", "_", "-"), got "../../x" (written by a newer moshctl?)",
      ]
    `);
  });
});

// status and down over records that do not describe a live session of this
// machine: another machine's, a crashed one whose pid was reused, one from a
// newer moshctl and a damaged file. No host is contacted (the records list no
// processes), and the pid reused is this test's own: it must never be signalled.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { processIdentity } from '../../src/state/owner.js';
import { RECORD_VERSION, type SessionRecord } from '../../src/state/record.js';
import { run, tempTree } from './helpers.js';
import { sshHost } from '../support/ssh-host.js';

function setup(records: Record<string, unknown>) {
  const cwd = tempTree({ 'moshproxy.yaml': 'hosts: {}\n' });
  const env = { HOME: cwd, XDG_STATE_HOME: join(cwd, 'state') };
  const dir = join(cwd, 'state', 'moshctl', 'sessions');
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(records))
    writeFileSync(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content));
  const left = (): string[] => readdirSync(dir).sort();
  /** Output with what differs per run (this machine, this pid, ages) masked. */
  const cli = async (argv: string[]) => {
    const r = await run(argv, { cwd, env });
    const mask = (t: string): string =>
      t
        .replaceAll(hostname(), '<here>')
        .replaceAll(`pid ${process.pid}`, 'pid <test>')
        .replace(/up \d+[smh]/g, 'up <age>')
        .replace(/not JSON \([^)]*\)/g, 'not JSON (…)');
    return { code: r.code, stdout: mask(r.stdout), stderr: mask(r.stderr) };
  };
  return { cwd, cli, left };
}

const base = (id: string, over: Partial<SessionRecord> = {}): SessionRecord => ({
  version: RECORD_VERSION,
  id,
  name: 'box',
  configFiles: [],
  createdAt: '2026-01-01T00:00:00Z',
  pid: 4242,
  machine: 'desktop.example',
  route: [],
  relays: [],
  networkTimeout: 60,
  ...over,
});

/** This test's pid, recorded with a start time it never had: a pid reused by another program. */
const reused = (id: string): SessionRecord =>
  base(id, { ...processIdentity(), pid: process.pid, startTime: '1' });

describe('status and down over records that are not live sessions here', () => {
  it('status shows another machine, a crashed session and every unreadable file', async () => {
    const { cli } = setup({
      'box-there.json': base('box-there'),
      'box-crashed.json': reused('box-crashed'),
      'box-new.json': { ...base('box-new'), version: RECORD_VERSION + 1 },
      'junk.json': '{"version": 2, "id":',
    });
    const r = await cli(['status']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatchInlineSnapshot(`
      "box  box-crashed  up <age>  client crashed
        crashed its moshctl up is gone: pid <test> is another process now, started at another time; "moshctl down box" stops what is left
        route   local → 
      box  box-there  up <age>  client on desktop.example
        route   local → 
      unreadable: <dir>/state/moshctl/sessions/box-new.json: record version 6; this moshctl reads versions up to 5 (written by a newer moshctl?)
      unreadable: <dir>/state/moshctl/sessions/junk.json: not JSON (…) (written by a newer moshctl?)
      "
    `);
    const json = JSON.parse((await cli(['status', '--json'])).stdout) as {
      sessions: { id: string; client: string; machine: string; crashed?: string }[];
      unreadable: { file: string; newer: boolean }[];
    };
    expect(json.sessions.map(({ id, client, crashed }) => [id, client, crashed])).toEqual([
      ['box-crashed', 'crashed', 'pid <test> is another process now, started at another time'],
      ['box-there', 'other-machine', undefined],
    ]);
    expect(json.unreadable.map((u) => [u.file.split('/').pop(), u.newer])).toEqual([
      ['box-new.json', true],
      ['junk.json', false],
    ]);
  });

  it('status shows what a live up keeps: the path, the chain, each forward with its counts, the agent', async () => {
    const box = sshHost({ name: 'box', ssh_name: 'box', address: '203.0.113.10' });
    // No process in it: nothing is asked of box.
    const live = base('box-live', {
      route: [box],
      ...processIdentity(),
      pid: process.pid,
      machine: hostname(),
      chain: { up: false, reconnects: 2, since: '2026-12-06T08:00:00.000Z', lastError: 'this machine moved' },
      path: { via: 'tcp' as const, since: '2026-12-06T07:59:00.000Z', changes: 3 },
      forwards: [
        { text: '-L 8080:localhost:80', listening: true, open: 1, total: 4, broken: 1, refused: 2 },
        {
          text: '-R 9000:localhost:22',
          listening: false,
          open: 0,
          total: 0,
          broken: 0,
          refused: 0,
          lastError: 'box refused: port in use',
        },
      ],
      agent: { host: 'box', socket: '~/.moshctl/agent/box.sock', up: false, lastError: 'chain down' },
    });
    // The same in a crashed up's record says nothing: those lived in its process.
    const { cli } = setup({
      'box-live.json': live,
      'box-crashed.json': { ...reused('box-crashed'), chain: live.chain, path: live.path },
      // auto that cannot come back: status says why.
      'box-stuck.json': {
        ...live,
        id: 'box-stuck',
        chain: { up: true, reconnects: 0 },
        forwards: [],
        agent: undefined,
        path: {
          via: 'tcp',
          since: '2026-12-06T08:01:00.000Z',
          changes: 1,
          noReturn: 'the relay on jump (socat) cannot answer UDP probes',
        },
      },
      'box-udp.json': {
        ...live,
        id: 'box-udp',
        chain: undefined,
        forwards: [],
        agent: undefined,
        path: { via: 'udp', since: '2026-12-06T08:02:00.000Z', changes: 2 },
      },
    });
    const r = await cli(['status']);
    expect(r.stdout).toMatchInlineSnapshot(`
      "box  box-crashed  up <age>  client crashed
        crashed its moshctl up is gone: pid <test> is another process now, started at another time; "moshctl down box" stops what is left
        route   local → 
      box  box-live  up <age>  client alive
        route   local → box
        path    tcp inside the ssh chain since 2026-12-06T07:59:00.000Z, changed 3×
        chain   down since 2026-12-06T08:00:00.000Z (came back 2×): this machine moved
        forward -L 8080:localhost:80: listening; 1 open, 4 in all, 1 broken, 2 refused
        forward -R 9000:localhost:22: not listening; 0 open, 0 in all, 0 broken, 0 refused; last error: box refused: port in use
        agent   box ~/.moshctl/agent/box.sock: not forwarded now (chain down)
      box  box-stuck  up <age>  client alive
        route   local → box
        path    tcp inside the ssh chain since 2026-12-06T08:01:00.000Z, changed 1×; stays on tcp: the relay on jump (socat) cannot answer UDP probes
        chain   up
      box  box-udp  up <age>  client alive
        route   local → box
        path    udp through the relays since 2026-12-06T08:02:00.000Z, changed 2×
      "
    `);
    const json = JSON.parse((await cli(['status', '--json'])).stdout) as {
      sessions: { id: string; forwards?: unknown[]; agent?: unknown; chain?: unknown; path?: unknown }[];
    };
    expect(
      json.sessions.map((x) => [x.id, x.forwards?.length, x.agent !== undefined, x.chain !== undefined]),
    ).toEqual([
      ['box-crashed', undefined, false, false],
      ['box-live', 2, true, true],
      ['box-stuck', 0, false, true],
      ['box-udp', 0, false, false],
    ]);
    expect(json.sessions.map((x) => x.path)).toEqual([
      undefined,
      live.path,
      expect.objectContaining({ via: 'tcp', noReturn: expect.stringContaining('socat') as unknown }),
      { via: 'udp', since: '2026-12-06T08:02:00.000Z', changes: 2 },
    ]);
  });

  it('down --all cleans the crashed session, leaves the other machine alone and says what to do with unreadable files', async () => {
    const { cli, left } = setup({
      'box-there.json': base('box-there'),
      'box-crashed.json': reused('box-crashed'),
      'box-new.json': { ...base('box-new'), version: RECORD_VERSION + 1 },
      'junk.json': '[',
    });
    const r = await cli(['down', '--all']);
    expect(r).toMatchInlineSnapshot(`
      {
        "code": 1,
        "stderr": "moshctl: unreadable state file <dir>/state/moshctl/sessions/box-new.json: record version 6; this moshctl reads versions up to 5 (written by a newer moshctl?)
        hint: a newer moshctl wrote it: stop its session with that version; if the session is over, remove the file (rm <dir>/state/moshctl/sessions/box-new.json)
      moshctl: unreadable state file <dir>/state/moshctl/sessions/junk.json: not JSON (…) (written by a newer moshctl?)
        hint: if its session is over, remove the file (rm <dir>/state/moshctl/sessions/junk.json); a server or relay it recorded that still runs must then be stopped by hand
      moshctl: box-crashed: crashed: its moshctl up is gone: pid <test> is another process now, started at another time; stopping what it started
      ",
        "stdout": "box-crashed: stopped nothing (already gone)
      box-there: left alone: its moshctl up runs on desktop.example (pid 4242); "moshctl down box" there, or "moshctl down box --force" here, ends it
      ",
      }
    `);
    expect(left()).toEqual(['box-new.json', 'box-there.json', 'junk.json']);
  });

  it('down NAME leaves another machine alone (exit 1) until --force', async () => {
    const { cwd, cli, left } = setup({});
    const cfg = join(cwd, 'moshproxy.yaml');
    const dir = join(cwd, 'state', 'moshctl', 'sessions');
    writeFileSync(join(dir, 'box-there.json'), JSON.stringify(base('box-there', { configFiles: [cfg] })));
    writeFileSync(
      join(dir, 'other-there.json'),
      JSON.stringify(base('other-there', { name: 'other', configFiles: [cfg] })),
    );
    expect(await cli(['down', 'box'])).toMatchInlineSnapshot(`
      {
        "code": 1,
        "stderr": "",
        "stdout": "box-there: left alone: its moshctl up runs on desktop.example (pid 4242); "moshctl down box" there, or "moshctl down box --force" here, ends it
      ",
      }
    `);
    expect(await cli(['down', 'box', '--force'])).toMatchInlineSnapshot(`
      {
        "code": 0,
        "stderr": "moshctl: box-there: --force: stopping a session of desktop.example from here; its moshctl up there (if it runs) is not signalled
      ",
        "stdout": "box-there: stopped nothing (already gone)
      ",
      }
    `);
    expect(left()).toEqual(['other-there.json']);
    // Without NAME (the whole config), skipping another machine's session is not a failure.
    expect((await cli(['down'])).code).toBe(0);
  });

  it('down NAME fails on an unreadable record of that name, and only notes one it cannot place', async () => {
    const { cwd, cli } = setup({ 'junk.json': 'x' });
    const dir = join(cwd, 'state', 'moshctl', 'sessions');
    const newer = { ...base('box-new', { configFiles: [join(cwd, 'moshproxy.yaml')] }), version: 99 };
    writeFileSync(join(dir, 'box-new.json'), JSON.stringify(newer));
    expect(await cli(['down', 'other'])).toMatchInlineSnapshot(`
      {
        "code": 0,
        "stderr": "moshctl: unreadable state file <dir>/state/moshctl/sessions/junk.json: not JSON (…) (written by a newer moshctl?)
        hint: if its session is over, remove the file (rm <dir>/state/moshctl/sessions/junk.json); a server or relay it recorded that still runs must then be stopped by hand
      ",
        "stdout": "no session named other to stop
      ",
      }
    `);
    expect(await cli(['down', 'box'])).toMatchInlineSnapshot(`
      {
        "code": 1,
        "stderr": "moshctl: unreadable state file <dir>/state/moshctl/sessions/box-new.json: record version 99; this moshctl reads versions up to 5 (written by a newer moshctl?)
        hint: a newer moshctl wrote it: stop its session with that version; if the session is over, remove the file (rm <dir>/state/moshctl/sessions/box-new.json)
      moshctl: unreadable state file <dir>/state/moshctl/sessions/junk.json: not JSON (…) (written by a newer moshctl?)
        hint: if its session is over, remove the file (rm <dir>/state/moshctl/sessions/junk.json); a server or relay it recorded that still runs must then be stopped by hand
      ",
        "stdout": "",
      }
    `);
  });
});

// The cleanup an `up` leaves when it stops waiting (record.cleanup): status
// shows it and its log, `down NAME` takes over from it (SIGTERM, then the
// teardown itself), `down --id` as the cleanup itself finishes and removes the
// record with its log. No host is contacted: the records list no processes.
// The cleanup is played by a `sleep` this test starts and stops by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processIdentity } from '../../src/state/owner.js';
import { RECORD_VERSION, type SessionRecord } from '../../src/state/record.js';
import { run, tempTree } from './helpers.js';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** A process standing in for a cleanup; its pid is killed after the test. */
async function standIn(): Promise<{ pid: number; startTime: string; exited: Promise<unknown> }> {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(child);
  await new Promise((r) => child.once('spawn', r));
  const pid = child.pid ?? 0;
  const exited = new Promise((r) => child.once('exit', r));
  return { pid, startTime: processIdentity(pid).startTime ?? '', exited };
}

function setup() {
  const cwd = tempTree({ 'moshproxy.yaml': 'hosts: {}\n' });
  const env = { HOME: cwd, XDG_STATE_HOME: join(cwd, 'state') };
  const dir = join(cwd, 'state', 'moshctl', 'sessions');
  mkdirSync(dir, { recursive: true });
  // Started with this folder's moshproxy.yaml, so `down NAME` here finds it.
  const write = (r: SessionRecord): void => {
    writeFileSync(
      join(dir, `${r.id}.json`),
      JSON.stringify({ ...r, configFiles: [join(cwd, 'moshproxy.yaml')] }),
    );
    writeFileSync(join(dir, `${r.id}.log`), 'what the cleanup said\n');
  };
  const left = (): string[] => readdirSync(dir).sort();
  const cli = async (argv: string[]) => {
    const r = await run(argv, { cwd, env });
    const mask = (t: string): string =>
      t
        .replaceAll(hostname(), '<here>')
        .replace(/pid \d+/g, 'pid <n>')
        .replace(/up \d+[smh]/g, 'up <age>')
        .replace(/^\S+Z /gm, '<time> ');
    return { code: r.code, stdout: mask(r.stdout), stderr: mask(r.stderr) };
  };
  return { dir, write, left, cli };
}

/** A session whose `up` (this test's pid, with a start it never had) is gone, as after it handed over. */
const handedOver = (id: string, cleanup: SessionRecord['cleanup']): SessionRecord => ({
  version: RECORD_VERSION,
  id,
  name: 'box',
  configFiles: [],
  createdAt: '2026-01-01T00:00:00Z',
  ...processIdentity(),
  pid: process.pid,
  startTime: '1',
  route: [],
  relays: [],
  networkTimeout: 60,
  ...(cleanup ? { cleanup } : {}),
});

const since = '2026-01-01T00:00:01.000Z';

describe('the cleanup an up left when it stopped waiting', () => {
  it('status shows it running, with its pid and log; once it ended, that something is left', async () => {
    const { write, cli } = setup();
    const c = await standIn();
    write(handedOver('box-1', { pid: c.pid, startTime: c.startTime, since }));
    const r = await cli(['status']);
    expect(r.stdout).toMatchInlineSnapshot(`
      "box  box-1  up <age>  client cleaning up
        cleanup its moshctl up stopped waiting; pid <n> stops what is left, its log: <dir>/state/moshctl/sessions/box-1.log
        route   local → 
      "
    `);
    const json = JSON.parse((await cli(['status', '--json'])).stdout) as {
      sessions: { client: string; cleanup: unknown; crashed?: string }[];
    };
    expect(json.sessions[0]?.client).toBe('cleaning-up');
    expect(json.sessions[0]?.crashed).toBeUndefined();
    expect(json.sessions[0]?.cleanup).toMatchObject({ pid: c.pid, since, running: true });

    process.kill(c.pid, 'SIGKILL');
    await c.exited;
    expect((await cli(['status'])).stdout).toMatchInlineSnapshot(`
      "box  box-1  up <age>  client crashed
        cleanup ended with something left (its log: <dir>/state/moshctl/sessions/box-1.log)
        crashed its moshctl up is gone: pid <n> is another process now, started at another time; "moshctl down box" stops what is left
        route   local → 
      "
    `);
  });

  it('down NAME takes over from a running cleanup: stops it, finishes, removes the record and its log', async () => {
    const { write, cli, left } = setup();
    const c = await standIn();
    write(handedOver('box-1', { pid: c.pid, startTime: c.startTime, since }));
    const r = await cli(['down', 'box']);
    expect(r).toMatchInlineSnapshot(`
      {
        "code": 0,
        "stderr": "moshctl: box-1: taking over from its cleanup (pid <n>)
      ",
        "stdout": "box-1: stopped nothing (already gone)
      ",
      }
    `);
    await c.exited;
    expect(left()).toEqual([]);
  });

  it('down --id ID as the cleanup itself: finishes with no one signalled, and removes the record and its log', async () => {
    const { write, cli, left } = setup();
    const other = await standIn();
    // Another session of the same name, whose cleanup must be left alone.
    write(handedOver('box-2', { pid: other.pid, startTime: other.startTime, since }));
    write(handedOver('box-1', { pid: process.pid, since }));
    const r = await cli(['down', '--id', 'box-1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('box-1: stopped nothing (already gone)\n');
    expect(r.stderr).toMatch(/^<time> cleaning up box-1 for moshctl up \(pid <n>\)\n$/);
    expect(left()).toEqual(['box-2.json', 'box-2.log']);
    expect(existsSync(`/proc/${other.pid}`)).toBe(true);
    expect(readFileSync(`/proc/${other.pid}/stat`, 'utf8')).not.toMatch(/\) Z /);
  });

  it('down --id: a session not there, and --id with NAME or --all refused', async () => {
    const { cli } = setup();
    expect((await cli(['down', '--id', 'box-9'])).stdout).toBe('no session with id box-9 to stop\n');
    const both = await cli(['down', 'box', '--id', 'box-9']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--id names one session/);
    expect((await cli(['down', '--all', '--id', 'box-9'])).code).toBe(2);
  });
});

// Whether a session's `up` process still runs: decided from fake /proc readers,
// so no real pid is needed (and none is ever signalled).
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import {
  cleanupOwner,
  owner,
  parseStat,
  processIdentity,
  systemProbe,
  type ProcessProbe,
} from '../../src/state/owner.js';
import { RECORD_VERSION, type SessionRecord } from '../../src/state/record.js';

const record: SessionRecord = {
  version: RECORD_VERSION,
  id: 'box-1',
  name: 'box',
  configFiles: [],
  createdAt: '2026-01-01T00:00:00Z',
  pid: 4242,
  machine: 'laptop',
  bootId: 'boot-a',
  startTime: '1000',
  route: [],
  relays: [],
  networkTimeout: 60,
};

/** This machine: laptop, booted as boot-a, where pid 4242 is the `up` that started at tick 1000. */
function probe(over: Partial<ProcessProbe> = {}): ProcessProbe {
  return {
    hostname: () => 'laptop',
    bootId: () => 'boot-a',
    signal0: (pid) => (pid === 4242 ? 'ours' : 'none'),
    stat: (pid) => (pid === 4242 ? { state: 'S', startTime: '1000' } : undefined),
    cmdline: (pid) => (pid === 4242 ? 'node /usr/bin/moshctl up box' : ''),
    ...over,
  };
}

describe('owner: is the up process alive', () => {
  it.each<[string, Partial<SessionRecord>, Partial<ProcessProbe>, ReturnType<typeof owner>]>([
    ['the same process', {}, {}, { kind: 'alive', pid: 4242 }],
    [
      'another machine (shared home)',
      {},
      { hostname: () => 'desktop' },
      { kind: 'other-machine', machine: 'laptop' },
    ],
    [
      'another machine, --no-connect',
      { detached: true },
      { hostname: () => 'desktop' },
      { kind: 'other-machine', machine: 'laptop' },
    ],
    ['--no-connect here', { detached: true }, {}, { kind: 'detached' }],
    [
      'after a reboot, even with the same pid and start time',
      {},
      { bootId: () => 'boot-b' },
      { kind: 'gone', why: 'this machine has restarted since: its boot id changed' },
    ],
    ['the pid is free', {}, { signal0: () => 'none' }, { kind: 'gone', why: 'pid 4242 no longer runs' }],
    [
      "another user's process has the pid",
      {},
      { signal0: () => 'foreign' },
      { kind: 'gone', why: 'pid 4242 belongs to another user now' },
    ],
    [
      'a zombie',
      {},
      { stat: () => ({ state: 'Z', startTime: '1000' }) },
      { kind: 'gone', why: 'pid 4242 has exited' },
    ],
    [
      'the pid started at another time, though its command line says moshctl',
      {},
      { stat: () => ({ state: 'S', startTime: '2000' }) },
      { kind: 'gone', why: 'pid 4242 is another process now, started at another time' },
    ],
    [
      'the same start time: the command line does not matter (process.title may change it)',
      {},
      { cmdline: () => 'something else' },
      { kind: 'alive', pid: 4242 },
    ],
    [
      'a version 2 record (no start time): the command line decides',
      { bootId: undefined, startTime: undefined },
      {},
      { kind: 'alive', pid: 4242 },
    ],
    [
      'a version 2 record whose pid runs another program',
      { bootId: undefined, startTime: undefined },
      { cmdline: () => 'sleep 300' },
      { kind: 'gone', why: 'pid 4242 runs another program now' },
    ],
    [
      'no boot id here (not Linux): the rest still counts',
      {},
      { bootId: () => undefined, stat: () => ({ state: 'S', startTime: '1' }) },
      { kind: 'gone', why: 'pid 4242 is another process now, started at another time' },
    ],
    [
      'no /proc at all (macOS): the pid alone, as before',
      { bootId: undefined, startTime: undefined },
      { bootId: () => undefined, stat: () => undefined, cmdline: () => undefined },
      { kind: 'alive', pid: 4242 },
    ],
  ])('%s', (_, rec, over, want) => {
    expect(owner({ ...record, ...rec }, probe(over))).toEqual(want);
  });
});

describe('cleanupOwner: is the cleanup an up left still running', () => {
  // pid 4242 runs as before; pid 5151 is the cleanup, started at tick 2000.
  const withCleanup = probe({
    signal0: (pid) => (pid === 4242 || pid === 5151 ? 'ours' : 'none'),
    stat: (pid) => (pid === 5151 ? { state: 'S', startTime: '2000' } : undefined),
  });
  const since = '2026-01-01T00:00:01Z';

  it('none named: undefined', () => {
    expect(cleanupOwner(record, withCleanup)).toBeUndefined();
  });

  it('judged by its own pid and start, on the machine of the up', () => {
    const c = (cleanup: SessionRecord['cleanup']): ReturnType<typeof cleanupOwner> =>
      cleanupOwner({ ...record, ...(cleanup ? { cleanup } : {}) }, withCleanup);
    expect(c({ pid: 5151, startTime: '2000', since })).toEqual({ kind: 'alive', pid: 5151 });
    expect(c({ pid: 5151, startTime: '1999', since })).toMatchObject({ kind: 'gone' });
    expect(c({ pid: 6000, startTime: '2000', since })).toEqual({
      kind: 'gone',
      why: 'pid 6000 no longer runs',
    });
    expect(c({ since })).toEqual({ kind: 'gone', why: 'it did not start' });
    expect(
      cleanupOwner(
        { ...record, cleanup: { pid: 5151, since } },
        { ...withCleanup, hostname: () => 'desktop' },
      ),
    ).toEqual({ kind: 'other-machine', machine: 'laptop' });
  });
});

describe('the process identity up records', () => {
  it('is host name, boot id and start time, each only where known', () => {
    expect(processIdentity(4242, probe())).toEqual({
      machine: 'laptop',
      bootId: 'boot-a',
      startTime: '1000',
    });
    expect(processIdentity(4242, probe({ bootId: () => undefined, stat: () => undefined }))).toEqual({
      machine: 'laptop',
    });
  });

  it('reads field 22 of /proc/PID/stat, whatever the command name holds', () => {
    const fields = (comm: string): string =>
      `77 (${comm}) S 1 77 77 0 -1 4194560 500 0 0 0 3 1 0 0 20 0 1 0 123456 1000000 200 18446744073709551615\n`;
    expect(parseStat(fields('node'))).toEqual({ state: 'S', startTime: '123456' });
    expect(parseStat(fields('a) R 1 2 (b'))).toEqual({ state: 'S', startTime: '123456' });
    expect(parseStat('garbage')).toBeUndefined();
  });

  it.runIf(process.platform === 'linux')('on Linux, names this very process', () => {
    const me = { ...record, pid: process.pid, ...processIdentity() };
    expect(me.machine).toBe(hostname());
    expect(me.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(me.startTime).toMatch(/^\d+$/);
    expect(owner(me)).toEqual({ kind: 'alive', pid: process.pid });
    expect(owner({ ...me, startTime: '1' })).toMatchObject({ kind: 'gone' });
    expect(systemProbe.signal0(0)).toBe('none');
    expect(systemProbe.signal0(-1)).toBe('none');
  });
});

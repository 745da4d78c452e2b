// teardown from a record: a host that cannot tell whether a process still runs
// (no /proc, no ps that answers) must not make moshctl forget that process.
import { describe, expect, it } from 'vitest';
import { teardown } from '../../src/execute/teardown.js';
import type { Runner } from '../../src/execute/runner.js';
import type { StopOutcome } from '../../src/remote/processes.js';
import { RECORD_VERSION, type SessionRecord } from '../../src/state/record.js';

function record(): SessionRecord {
  return {
    version: RECORD_VERSION,
    id: 'target-abc',
    name: 'target',
    configFiles: [],
    createdAt: new Date().toISOString(),
    pid: 4242,
    machine: 'here',
    route: [],
    server: { host: 'target', pid: 700, port: 60001 },
    relays: [{ host: 'bastion', pid: 600, port: 61001, runtime: 'python3' }],
    networkTimeout: 60,
  };
}

/** A runner whose stops answer `outcomes` by pid; nothing else is used. */
function runner(outcomes: Record<number, StopOutcome>): Runner {
  return {
    stop: (_host: string, pid: number) => Promise.resolve(outcomes[pid] ?? 'stopped'),
    close: () => Promise.resolve(),
  } as unknown as Runner;
}

describe('teardown', () => {
  it('keeps in the record what a host could not tell about, says why, and stops the rest', async () => {
    const rec = record();
    const saved: SessionRecord[] = [];
    const log: string[] = [];
    const report = await teardown(rec, runner({ 700: 'unknown', 600: 'gone' }), {
      save: (r) => saved.push(structuredClone(r)),
      log: (l) => log.push(l),
    });
    expect(report.stopped).toEqual(['relay on bastion (pid 600, UDP 61001) (gone)']);
    expect(report.left).toEqual([
      {
        what: 'mosh-server on target (pid 700, UDP 60001)',
        why: 'target could not tell whether it still runs (no /proc there, and no ps that answers for a pid); nothing was signalled',
      },
    ]);
    expect(rec.server?.pid).toBe(700);
    expect(rec.relays).toEqual([]);
    expect(log[0]).toMatch(/^not stopped: mosh-server on target .*could not tell/);
    expect(log[1]).toContain('run "moshctl down target" again');
  });
});

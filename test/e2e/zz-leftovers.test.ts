// Runs last, alone: it is the only file of the e2e-leftovers project, whose
// sequence.groupOrder (vitest.config.ts) starts it once every e2e file, run
// side by side, has built and removed its labs. Nothing of them may remain.
// Labs still owned by a live process (another run on this machine, a lab left
// up with `lab up`) are reported, not failed.

import { describe, expect, it } from 'vitest';
import { DEFAULT_PREFIX, findLeftovers } from '../../src/lab/index.js';
import { e2eSkipReason } from './support.js';

describe.skipIf(e2eSkipReason())('after the e2e suite', () => {
  it('no lab namespace, registry entry, lab process, sshd, mosh process or relay is left', async () => {
    const left = await findLeftovers(DEFAULT_PREFIX);
    if (left.inUse.length > 0)
      console.warn(`labs owned by live processes, not checked: ${left.inUse.join(', ')}`);
    expect(left.namespaces, 'lab namespaces').toEqual([]);
    expect(left.records, 'registry entries of dead owners').toEqual([]);
    expect(left.pids, 'live pids recorded by finished labs').toEqual([]);
    expect(left.processes, 'sshd/mosh/relay processes in lab or deleted namespaces').toEqual([]);
  });
});

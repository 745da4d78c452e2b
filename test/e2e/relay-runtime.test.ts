// A bastion where no relay runtime runs: python3, perl and socat exist there
// but cannot execute (bind-mounted over with /dev/null for its sshd). `up`
// must say what to install, exit 1, and stop the mosh-server it had started.
import { describe, expect, it } from 'vitest';
import { records, settleNoSessionProcesses, stderrOf, useSessions, waitForExit } from './moshctl.js';
import { e2eSkipReason, programFiles, useLab } from './support.js';

const reason = e2eSkipReason();

describe.skipIf(reason)('a bastion where neither python3, perl nor socat runs', () => {
  const ctx = useLab({ hide: { bastion: programFiles(['python3', 'perl', 'socat']) } });
  const { start } = useSessions(ctx);

  it('up exits 1 naming what to install, and stops the mosh-server it started', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'target']);
    expect(await waitForExit(s)).toBe(1);
    const err = stderrOf(s);
    expect(err).toContain(
      'no relay runtime on bastion: neither python3 (>= 3.6) nor perl runs there, and socat is not installed',
    );
    expect(err).toContain('apt install python3');
    expect(err).toMatch(/ended; stopped 1 process\(es\)/);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

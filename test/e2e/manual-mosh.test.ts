// The article's recipe, done by hand in the lab: mosh-server on the target
// over `ssh -J`, a socat relay on the bastion, mosh-client in tmux on the
// client. It proves the lab carries a real interactive mosh session through
// the bastion, and is the baseline that `moshctl up` automates.

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Tmux } from '../../src/lab/index.js';
import { e2eSkipReason, useLab } from './support.js';

const reason = e2eSkipReason();

describe.skipIf(reason)('a mosh session through the lab, by hand', () => {
  const ctx = useLab();

  it('types into mosh-client on the client and the command runs on the target', async () => {
    const { lab } = ctx;
    const server = await lab.exec(
      'client',
      lab.sshArgv('target', [
        'env MOSH_SERVER_NETWORK_TMOUT=60 mosh-server new -p 60001:60010 -l LANG=C.UTF-8',
      ]),
      { timeoutMs: 20_000 },
    );
    expect(server.code, server.stderr).toBe(0);
    const connect = /^MOSH CONNECT (\d+) ([A-Za-z0-9/+]{22})\s*$/m.exec(server.stdout);
    const pid = /\[mosh-server detached, pid = (\d+)\]/.exec(server.stderr)?.[1];
    expect(connect, server.stdout + server.stderr).not.toBeNull();
    expect(pid).toBeDefined();
    lab.track(Number(pid));

    lab.spawn('bastion', ['socat', 'UDP4-LISTEN:61001,reuseaddr', `UDP4:203.0.113.10:${connect?.[1]}`]);
    await sleep(200);
    const tmux = await Tmux.start(lab, {
      command: ['mosh-client', '192.0.2.1', '61001'],
      env: { MOSH_KEY: connect?.[2] ?? '' },
    });
    try {
      // The shell's prompt on the target ends in "# " (root); wait for the session to draw it.
      await tmux.waitFor(/# $/m, 20_000);
      const out = `/tmp/moshctl-lab-${lab.runId}-typed`;
      // Only a shell in the target's network namespace can write the target's namespace name.
      await tmux.sendKeys(`ip netns identify > ${out}; echo written-$((6*7))`);
      await tmux.sendEnter();
      await tmux.waitFor('written-42', 10_000);
      const r = await lab.exec('target', ['cat', out]);
      expect(r.stdout.trim()).toBe(lab.hosts.target.ns);
      await lab.exec('target', ['rm', '-f', out]);
    } finally {
      await tmux.kill();
    }
  });
});

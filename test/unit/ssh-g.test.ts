// `ssh -G` started early (startSshG, from main.ts before the command loads):
// the command's own call with the same arguments takes that run's answer
// instead of starting ssh again, and a name moshproxy.yaml declares starts
// nothing. The `ssh` here is a script on PATH that logs each run.
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sshGContext, startSshG } from '../../src/config/ssh-g.js';
import { tempTree } from './helpers.js';

/** A folder with an `ssh` that logs its arguments and answers as `ssh -G` would, or fails for `bad-*`. */
function fakeSsh(): { env: Record<string, string>; runs: () => string[] } {
  const dir = tempTree({
    'bin/ssh': [
      '#!/bin/sh',
      `echo "$*" >> "$(dirname "$0")/../runs"`,
      'for last; do :; done',
      'case "$last" in bad-*) echo "no such thing: $last" >&2; exit 255;; esac',
      'echo "hostname $last"',
      'echo "port 22"',
      '',
    ].join('\n'),
  });
  chmodSync(join(dir, 'bin/ssh'), 0o755);
  const log = join(dir, 'runs');
  return {
    env: { PATH: join(dir, 'bin') },
    runs: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []),
  };
}

/** Waits until `runs()` has `n` lines (an early run ends on its own time), at most 10 s. */
async function runsReach(runs: () => string[], n: number): Promise<string[]> {
  for (const end = Date.now() + 10_000; runs().length < n && Date.now() < end;) await sleep(20);
  return runs();
}

/** How long a run that should not have started is given to show up in the log anyway. */
const GRACE_MS = 300;

describe('startSshG', () => {
  it("answers the command's sshG call with the run it started, without running ssh again", async () => {
    const ssh = fakeSsh();
    startSshG(ssh.env, 'far', []);
    const { sshG } = sshGContext(ssh.env);
    expect(await sshG!('far', {})).toBe('hostname far\nport 22\n');
    expect(ssh.runs()).toEqual(['-G -- far']);
    // Used once: a later call runs ssh anew.
    expect(await sshG!('far', {})).toBe('hostname far\nport 22\n');
    expect(ssh.runs()).toEqual(['-G -- far', '-G -- far']);
  });

  it('is not taken for a call with other arguments (a user or a port, another config file)', async () => {
    const ssh = fakeSsh();
    startSshG(ssh.env, 'far', []);
    const { sshG } = sshGContext({ ...ssh.env, MOSHCTL_SSH_CONFIG: '/dev/null' });
    await sshG!('far', { user: 'alice' });
    expect((await runsReach(ssh.runs, 2)).sort()).toEqual(['-F /dev/null -G -l alice -- far', '-G -- far']);
  });

  it('starts nothing for a name a config file declares as a key, nor for user@host', async () => {
    const ssh = fakeSsh();
    const dir = tempTree({
      'moshproxy.yaml':
        'version: 1\nhosts:\n  bastion: {address: b.example.com}\n  "dev.box":\n    address: 10.0.3.12\n',
    });
    const files = [join(dir, 'moshproxy.yaml')];
    startSshG(ssh.env, 'bastion', files);
    startSshG(ssh.env, 'dev.box', files);
    startSshG(ssh.env, 'alice@far', files);
    await sleep(GRACE_MS);
    expect(ssh.runs()).toEqual([]);
    // devXbox is not dev.box: the dot is not a pattern.
    startSshG(ssh.env, 'devXbox', files);
    await sshGContext(ssh.env).sshG!('devXbox', {});
    expect(ssh.runs()).toEqual(['-G -- devXbox']);
  });

  it('gives a failed run to the caller, and an unused failed run to nobody', async () => {
    const ssh = fakeSsh();
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): number => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      startSshG(ssh.env, 'bad-unused', []);
      startSshG(ssh.env, 'bad-used', []);
      await expect(sshGContext(ssh.env).sshG!('bad-used', {})).rejects.toThrow('no such thing: bad-used');
      expect((await runsReach(ssh.runs, 2)).sort()).toEqual(['-G -- bad-unused', '-G -- bad-used']);
      await sleep(GRACE_MS); // the unused run's rejection, had nobody caught it
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('starts nothing without ssh on PATH', async () => {
    const ssh = fakeSsh();
    startSshG({ PATH: '/nonexistent' }, 'far', []);
    await sleep(GRACE_MS);
    expect(ssh.runs()).toEqual([]);
  });
});

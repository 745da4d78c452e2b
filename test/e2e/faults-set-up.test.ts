// Rows of docs/faults.md for what goes wrong while `up` sets a session up,
// after every hop answered: a hop that dies (its sshd sessions killed, as when
// the host reboots or its sshd restarts), a login prompt left open by a hop
// that died, and mosh-servers that misbehave or cannot run. Each is made real
// in the lab; each test checks the exit code, the message (the hop or step to
// blame, and how to fix it), and that nothing is left on any host.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { HostName, Lab } from '../../src/lab/index.js';
import {
  cmdline,
  exitSession,
  expectEnded,
  readRecord,
  records,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForPrompt,
  waitForStderr,
  type UpSession,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

/** The lab's moshproxy.yaml for `client`, written beside it. */
function configFor(lab: Lab, client: (typeof SSH_CLIENTS)[number]): string {
  const file = join(lab.dir, `set-up-${client}.yaml`);
  writeFileSync(file, lab.configText({ sshClient: client }), { mode: 0o600 });
  return file;
}

/**
 * Kills every sshd session process on `host` (not its listener): each
 * connection to it drops at once, as when the host's sshd is restarted.
 * Returns how many it killed.
 */
async function killSshdSessions(lab: Lab, host: HostName): Promise<number> {
  let killed = 0;
  for (const pid of await lab.pidsIn(host)) {
    if (!/^sshd: \S+(@notty| \[priv\])/.test(cmdline(pid))) continue;
    try {
      process.kill(pid, 'SIGKILL');
      killed++;
    } catch {
      // ended meanwhile
    }
  }
  return killed;
}

/** Programs on `host` whose command line is exactly `cmd`. */
async function running(lab: Lab, host: HostName, cmd: string): Promise<number[]> {
  return (await lab.pidsIn(host)).filter((pid) => cmdline(pid) === cmd);
}

async function until(what: string, pred: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

const DROPPED_IN_SET_UP =
  'connect on bastion: the connection to bastion dropped while the session was being set up';

describe.skipIf(reason)('a hop that dies while up sets the session up (two bastions)', () => {
  const ctx = useLab({ bastions: 2 });
  const { start } = useSessions(ctx);

  /** up, held before `step`; bastion's connections killed; then let go on. */
  async function killBastionBefore(step: string, client: (typeof SSH_CLIENTS)[number]): Promise<UpSession> {
    const { lab } = ctx;
    const s = await start(['up', 'target'], {
      config: configFor(lab, client),
      env: { MOSHCTL_TEST_HOLD: step },
    });
    await waitForStderr(s, `holding before step ${step}`);
    // Relays start as their hops connect, beside the hold: both run before the bastion dies.
    await until(
      'the relays on both bastions did not start',
      async () => (await readRecord(s)).relays.length === 2,
    );
    const { pid } = await readRecord(s);
    expect(await killSshdSessions(lab, 'bastion')).toBeGreaterThan(0);
    // Let moshctl hear of it before it goes on, as it would when a hop dies mid-step.
    await sleep(500);
    process.kill(pid, 'SIGUSR2');
    return s;
  }

  it.each(SSH_CLIENTS)(
    '%s, before mosh-server starts (the relays on both bastions run): exit 1 blaming bastion, the relays stopped over a new connection',
    async (client) => {
      const { lab } = ctx;
      const s = await killBastionBefore('server', client);
      const err = await expectEnded(lab, s, 1, 30_000);
      expect(err).toContain(DROPPED_IN_SET_UP);
      expect(err).toContain(
        'hint: check that bastion is up and that the hop before it (or this machine) reaches it',
      );
      // The relays went on alone when their channels closed: they are stopped by pid.
      expect(err).toMatch(/ended; stopped 2 process\(es\)/);
      expect(err).not.toMatch(/not stopped|unexpected error|cannot forward/);
    },
  );

  it.each(SSH_CLIENTS)(
    '%s, after set-up, before mosh-client starts: the relays go on alone, the session works, nothing is left',
    async (client) => {
      const { lab } = ctx;
      const s = await killBastionBefore('client', client);
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      expect(await exitSession(s)).toBe(0);
      expect(stderrOf(s)).not.toMatch(/not stopped|unexpected error/);
      expect(await settleNoSessionProcesses(lab)).toEqual([]);
      // No sshd session of the dropped connections stays on any hop either.
      expect(await settleNoHopProcesses(lab)).toEqual([]);
      expect(records(s)).toEqual([]);
    },
  );
});

describe.skipIf(reason)('a hop that dies while the next one asks for a one-time code', () => {
  const ctx = useLab({ kbdInteractive: ['target'] });
  const { start } = useSessions(ctx);

  it.each(SSH_CLIENTS)(
    '%s: the prompt closes at once, exit 1 blaming bastion, not the target; the relay already on bastion is stopped',
    async (client) => {
      const { lab } = ctx;
      const s = await start(['up', 'target'], { config: configFor(lab, client) });
      await s.tmux.waitFor(/Password: ?$/m, 20_000);
      // The relay on the bastion starts while the target asks: it runs when the bastion dies.
      await until(
        'the relay on bastion did not start',
        async () => (await readRecord(s)).relays.length === 1,
      );
      expect(await killSshdSessions(lab, 'bastion')).toBeGreaterThan(0);
      // Nobody types: the prompt must not keep moshctl waiting.
      const err = await expectEnded(lab, s, 1, 10_000);
      expect(err).toContain(
        'connect on bastion: the connection to bastion dropped while target was logging in through it',
      );
      expect(err).not.toMatch(/OpenSSH server|ssh_dispatch_run_fatal|unexpected error|not stopped/);
      // The bastion's connection dropped, the bastion did not: teardown reaches it again for its relay.
      expect(err).toMatch(/ended; stopped 1 process\(es\)/);
    },
  );
});

describe.skipIf(reason)('mosh-servers that misbehave (a stand-in first on the target’s PATH)', () => {
  // /usr/local/bin comes before /usr/bin on the PATH of an ssh session: a
  // mosh-server put there stands in for the real one, for the target only.
  const ctx = useLab({ mounts: { target: [{ target: '/usr/local/bin', emptyDir: true }] } });
  const { start } = useSessions(ctx);
  const standIn = (): string => join(ctx.lab.mountedFile('target', '/usr/local/bin'), 'mosh-server');
  const useStandIn = (script: string): void =>
    writeFileSync(standIn(), `#!/bin/sh\n# moshctl e2e: a misbehaving mosh-server\n${script}\n`, {
      mode: 0o755,
    });
  afterEach(() => rmSync(standIn(), { force: true }));

  it.each(SSH_CLIENTS)(
    '%s, it exits 0 without MOSH CONNECT: exit 1, quotes its last words',
    async (client) => {
      const { lab } = ctx;
      useStandIn('echo "mosh-server (stand-in) has nothing to say"\nexit 0');
      const s = await start(['up', 'target'], { config: configFor(lab, client) });
      const err = await expectEnded(lab, s, 1, 30_000);
      expect(err).toContain(
        'start mosh-server on target: mosh-server exited without printing its MOSH CONNECT line; its last words: mosh-server (stand-in) has nothing to say',
      );
      expect(err).toContain('hint: run "mosh-server new" on that host by hand');
      // The relay started beside it is stopped.
      expect(err).toMatch(/ended; stopped 1 process\(es\)/);
    },
  );

  // How long moshctl waits does not depend on the ssh client: once is enough (it takes 20 s).
  it('it prints nothing and keeps running: stopped after 20 s with the shell around it, exit 1', async () => {
    const { lab } = ctx;
    useStandIn('exec sleep 86401');
    const s = await start(['up', 'target'], { config: configFor(lab, 'ssh2') });
    await until(
      'the stand-in did not start',
      async () => (await running(lab, 'target', 'sleep 86401')).length > 0,
    );
    const err = await expectEnded(lab, s, 1, 40_000);
    expect(err).toContain(
      'start mosh-server on target: mosh-server printed no MOSH CONNECT line within 20 s and was stopped',
    );
    expect(err).not.toContain('connection to target closed');
    await until(
      'the stand-in was left running',
      async () => (await running(lab, 'target', 'sleep 86401')).length === 0,
    );
  });

  it.each(SSH_CLIENTS)(
    '%s, the bastion dies while mosh-server starts: exit 1 blaming bastion; the mosh-server nobody heard of is stopped on the target',
    async (client) => {
      const { lab } = ctx;
      // The real mosh-server, two seconds late: it prints MOSH CONNECT after the connection is gone.
      useStandIn('sleep 2\nexec /usr/bin/mosh-server "$@"');
      const s = await start(['up', 'target'], { config: configFor(lab, client) });
      await until(
        'the stand-in did not start',
        async () => (await running(lab, 'target', 'sleep 2')).length > 0,
      );
      expect(await killSshdSessions(lab, 'bastion')).toBeGreaterThan(0);
      const err = await expectEnded(lab, s, 1, 30_000);
      expect(err).toContain(DROPPED_IN_SET_UP);
      expect(err).not.toMatch(/not stopped|unexpected error/);
      // The real mosh-server did start, after the connection was gone; its keeper stops it.
    },
  );
});

describe.skipIf(reason)('a target without a UTF-8 locale (an empty /usr/lib/locale there)', () => {
  const ctx = useLab({ mounts: { target: [{ target: '/usr/lib/locale', emptyDir: true }] } });
  const { start } = useSessions(ctx);

  it('exit 1, says mosh-server found no UTF-8 locale and how to get one; the relay is stopped', async () => {
    const { lab } = ctx;
    const s = await start(['up', 'target'], { config: configFor(lab, 'ssh2') });
    const err = await expectEnded(lab, s, 1, 30_000);
    expect(err).toContain(
      'start mosh-server on target: mosh-server found no UTF-8 locale it can use there (mosh.locale)',
    );
    expect(err).toContain('hint: set mosh.locale to one that `locale -a` lists on that host');
  });
});

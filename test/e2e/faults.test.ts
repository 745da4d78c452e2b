// The faults table of docs/faults.md, the rows no other e2e file proves: each
// fault made real in the lab (real sshd, OpenSSH, mosh), and what `moshctl up`
// then does: its exit code, the message (host, step, how to fix it), and that
// nothing is left running on any host and no state record is left behind.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findLabUsers, type HostName, type Lab } from '../../src/lab/index.js';
import {
  cmdline,
  exitSession,
  expectEnded as expectEndedIn,
  readRecord,
  records,
  runWithoutTerminal,
  sessionProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForExit,
  waitForPrompt,
  waitForStderr,
  type UpSession,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

type Client = 'ssh2' | 'openssh';
type Hop = 'bastion' | 'bastion2' | 'target';

const ADDRESS: Record<Hop, string> = {
  bastion: '192.0.2.1',
  bastion2: '198.51.100.2',
  target: '203.0.113.10',
};

let configs = 0;

/**
 * The lab's moshproxy.yaml for `client`, with another key, known_hosts, user
 * or connect_timeout, written in the lab dir.
 */
function config(
  lab: Lab,
  client: Client,
  o: { keyFile?: string; knownHosts?: string; user?: string; connectTimeout?: number } = {},
): string {
  let text = lab.configText({
    sshClient: client,
    ...(o.keyFile ? { keyFile: o.keyFile } : {}),
    ...(o.knownHosts ? { knownHostsFile: o.knownHosts } : {}),
    ...(o.user ? { user: o.user } : {}),
  });
  if (o.connectTimeout)
    text = text.replace(/^defaults:\n/m, `defaults:\n  connect_timeout: ${o.connectTimeout}\n`);
  const file = join(lab.dir, `faults-${++configs}.yaml`);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

/** "type base64" of the host key the lab gave a host's sshd. */
function hostKey(lab: Lab, host: HostName): string {
  return readFileSync(join(lab.dir, host, 'ssh_host_ed25519_key.pub'), 'utf8')
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .join(' ');
}

function fingerprint(lab: Lab, host: HostName): string {
  const out = execFileSync('ssh-keygen', ['-lf', join(lab.dir, host, 'ssh_host_ed25519_key.pub')], {
    encoding: 'utf8',
  });
  const fp = /SHA256:\S+/.exec(out)?.[0];
  if (!fp) throw new Error(`no fingerprint in: ${out}`);
  return fp;
}

/** Session records under a state folder. */
function recordsIn(stateHome: string): string[] {
  const dir = join(stateHome, 'moshctl', 'sessions');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
}

/** Waits until `pred` holds; throws `what` after timeoutMs. */
async function until(
  what: string,
  pred: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** moshctl as the client without a terminal, in the state folder of `s` (so `down` finds its record). */
function moshctlBeside(lab: Lab, s: UpSession, args: string[], config = lab.configFile) {
  return runWithoutTerminal(lab, args, { config, env: { XDG_STATE_HOME: s.stateHome } });
}

/** A folder every remote user may write to: a typed command leaves its proof there. */
function writableDir(made: string[]): string {
  const dir = mkdtempSync('/tmp/moshctl-e2e-faults-');
  chmodSync(dir, 0o1777);
  made.push(dir);
  return dir;
}

describe.skipIf(reason)('faults on the hops of a two-bastion chain', () => {
  const ctx = useLab({ bastions: 2 });
  const sessions = useSessions(ctx, () => ctx.lab.clearDrops());

  const expectEnded = (s: UpSession, code: number, timeoutMs?: number): Promise<string> =>
    expectEndedIn(ctx.lab, s, code, timeoutMs);

  /** A session that works: keystrokes reach the target, `exit` ends it cleanly. */
  async function expectWorkingSession(s: UpSession): Promise<void> {
    await waitForPrompt(s);
    await typeAndCheck(ctx.lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(ctx.lab)).toEqual([]);
    expect(records(s)).toEqual([]);
  }

  describe('host keys', () => {
    /** known_hosts with every hop's key, except `hop`: left out (unknown) or another host's key (changed). */
    function knownHosts(lab: Lab, hop: Hop, kind: 'unknown' | 'changed'): string {
      const lines = (['bastion', 'bastion2', 'target'] as const).flatMap((h) =>
        h !== hop
          ? [`${ADDRESS[h]} ${hostKey(lab, h)}`]
          : kind === 'changed'
            ? [`${ADDRESS[h]} ${hostKey(lab, 'outsider')}`]
            : [],
      );
      const file = join(lab.dir, `known_hosts.${hop}-${kind}`);
      writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
      return file;
    }

    // ssh2 on the first hop: up-failures.test.ts ('an unknown host key', 'a changed host key').
    const cases = (['ssh2', 'openssh'] as const).flatMap((client) =>
      (['bastion', 'bastion2', 'target'] as const)
        .filter((hop) => client === 'openssh' || hop !== 'bastion')
        .flatMap((hop) => (['unknown', 'changed'] as const).map((kind) => [client, kind, hop] as const)),
    );
    it.each(cases)(
      '%s, %s key of %s: exit 1 naming the hop, its key and how to check it; nothing started is left',
      async (client, kind, hop) => {
        const { lab } = ctx;
        const file = knownHosts(lab, hop, kind);
        const s = await sessions.start(['up', 'target'], {
          config: config(lab, client, { knownHosts: file }),
        });
        const err = await expectEnded(s, 1);
        const label = `host key of ${hop} \\(root@${ADDRESS[hop].replaceAll('.', '\\.')}:22\\)`;
        if (kind === 'unknown') {
          expect(err).toMatch(new RegExp(`connect on ${hop}: ${label} is not in ${file}`));
          expect(err).toContain(`ssh-keyscan -p 22 ${ADDRESS[hop]}`);
          // From the hop before, for an inner hop: this machine cannot reach it.
          if (hop !== 'bastion') expect(err).toContain(`run on ${hop === 'target' ? 'bastion2' : 'bastion'}`);
          // ssh2 shows the key it was offered; OpenSSH under strict checking does not say it.
          if (client === 'ssh2') expect(err).toContain(fingerprint(lab, hop));
        } else {
          expect(err).toMatch(new RegExp(`connect on ${hop}: ${label} does not match ${file} line \\d`));
          expect(err).toMatch(/man-in-the-middle attack/);
          expect(err).toContain(fingerprint(lab, hop));
          expect(err).toContain(`ssh-keygen -R '${ADDRESS[hop]}' -f ${file}`);
        }
      },
    );

    it.each(['ssh2', 'openssh'] as const)(
      'an unreadable known_hosts (%s): exit 1, names the file and says to make it readable',
      async (client) => {
        const { lab } = ctx;
        const files = lab.clientUserFiles;
        if (lab.usersMissing || !files) return void console.warn(`skipped: ${lab.usersMissing}`);
        const locked = lab.writeClientUserFile(
          'known_hosts.locked',
          readFileSync(files.knownHostsFile, 'utf8'),
        );
        chmodSync(locked, 0o000);
        const text = lab.configText({ keyFile: files.keyFile, knownHostsFile: locked, sshClient: client });
        const s = await sessions.start(['up', 'target'], {
          config: lab.writeClientUserFile(`faults-locked-${client}.yaml`, text),
          asClientUser: true,
        });
        const err = await expectEnded(s, 1);
        expect(err).toContain(
          `connect on bastion: cannot read known_hosts file ${locked} of bastion: EACCES`,
        );
        expect(err).toContain('hint: make it readable by this user');
        expect(err).not.toContain('is not in');
      },
    );
  });

  describe('keys', () => {
    let encrypted = '';
    const passphrase = 'correct horse 7';
    beforeAll(() => {
      // The lab's own (authorized) key, encrypted with a passphrase.
      encrypted = join(ctx.lab.dir, 'id_encrypted');
      copyFileSync(ctx.lab.keyFile, encrypted);
      chmodSync(encrypted, 0o600);
      execFileSync('ssh-keygen', ['-q', '-p', '-f', encrypted, '-P', '', '-N', passphrase]);
    });

    it.each(['ssh2', 'openssh'] as const)(
      'an encrypted key (%s) asks for its passphrase on the terminal, hides it, and the session works',
      async (client) => {
        const { lab } = ctx;
        const s = await sessions.start(['up', 'target'], {
          config: config(lab, client, { keyFile: encrypted }),
          env: { SSH_AUTH_SOCK: '' },
        });
        // Each hop logs in with its own connection: answer every prompt that comes, until the shell's.
        const prompt = `Enter passphrase for key '${encrypted}':`;
        let answered = 0;
        await until(
          'no shell prompt after the passphrase',
          async () => {
            const screen = await s.tmux.capture();
            if (/# $/m.test(screen)) return true;
            const asked = screen.split(prompt).length - 1;
            if (asked > answered) {
              answered = asked;
              await s.tmux.sendKeys(passphrase);
              await s.tmux.sendEnter();
            }
            return false;
          },
          30_000,
        );
        // ssh2 asks once per key file; ssh -J asks once per hop.
        if (client === 'ssh2') expect(answered).toBe(1);
        else {
          expect(answered).toBeGreaterThanOrEqual(1);
          expect(answered).toBeLessThanOrEqual(3);
        }
        expect(await s.tmux.capture()).not.toContain(passphrase);
        expect(stderrOf(s)).not.toContain(passphrase);
        await expectWorkingSession(s);
      },
    );

    it.each(['ssh2', 'openssh'] as const)(
      'Ctrl-C at the passphrase prompt (%s): exit 130, nothing started is left',
      async (client) => {
        const { lab } = ctx;
        const s = await sessions.start(['up', 'target'], {
          config: config(lab, client, { keyFile: encrypted }),
          env: { SSH_AUTH_SOCK: '' },
        });
        await s.tmux.waitFor(`Enter passphrase for key '${encrypted}':`, 20_000);
        await s.tmux.sendKey('C-c');
        const err = await expectEnded(s, 130);
        expect(err).toMatch(/^moshctl: interrupted by SIGINT$/m);
        expect(err).not.toMatch(/not stopped|unexpected error/);
      },
    );

    it('an encrypted key without a terminal (ssh2): exit 1 at once, says to load it into ssh-agent, starts nothing', async () => {
      const { lab } = ctx;
      const state = join(lab.dir, 'state-encrypted');
      const r = await runWithoutTerminal(lab, ['up', 'target', '--no-connect'], {
        config: config(lab, 'ssh2', { keyFile: encrypted }),
        env: { XDG_STATE_HOME: state },
        noAgent: true,
      });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `connect on bastion: identity file ${encrypted} for bastion is encrypted, and there is neither a terminal to ask for its passphrase nor an ssh-agent`,
      );
      expect(r.stderr).toContain(
        `hint: load it into ssh-agent (eval "$(ssh-agent)" && ssh-add ${encrypted})`,
      );
      expect(r.ms).toBeLessThan(5_000);
      expect(await sessionProcesses(lab)).toEqual([]);
      expect(recordsIn(state)).toEqual([]);
    });

    it('an encrypted key without a terminal or agent (openssh): exit 1, says the key is encrypted, not refused', async () => {
      const { lab } = ctx;
      const state = join(lab.dir, 'state-encrypted-openssh');
      const r = await runWithoutTerminal(lab, ['up', 'target', '--no-connect'], {
        config: config(lab, 'openssh', { keyFile: encrypted }),
        env: { XDG_STATE_HOME: state },
        noAgent: true,
      });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        `connect on bastion: identity file ${encrypted} for bastion is encrypted, and there is neither a terminal to ask for its passphrase nor an ssh-agent`,
      );
      expect(r.stderr).toContain(
        `hint: load it into ssh-agent (eval "$(ssh-agent)" && ssh-add ${encrypted})`,
      );
      expect(r.stderr).not.toMatch(/ssh-agent\)?;|tried .* the ssh-agent|authorize the key/);
      expect(await sessionProcesses(lab)).toEqual([]);
      expect(recordsIn(state)).toEqual([]);
    });

    it('no key and no agent (ssh2), in a terminal: exit 1, says there is no key, not to authorize one', async () => {
      const { lab } = ctx;
      if (lab.usersMissing || !lab.clientUser) return void console.warn(`skipped: ${lab.usersMissing}`);
      const files = lab.clientUserFiles;
      if (!files) throw new Error('no client user files');
      const text = lab
        .configText({ knownHostsFile: files.knownHostsFile, sshClient: 'ssh2' })
        .replace(/^ {2}identity_file: .*\n/m, '');
      const s = await sessions.start(['up', 'target'], {
        config: lab.writeClientUserFile('faults-nokey-tty.yaml', text),
        env: { SSH_AUTH_SOCK: '' },
        asClientUser: true,
      });
      const err = await expectEnded(s, 1);
      expect(err).toContain(
        'connect on bastion: no key to log in to bastion with: no identity file (none named, and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa), no ssh-agent (SSH_AUTH_SOCK is not set), and bastion (root@192.0.2.1:22) did not let user root in with a password or keyboard-interactive prompt',
      );
      expect(err).toContain('hint: set identity_file for bastion, create a key (ssh-keygen -t ed25519)');
      expect(err).not.toContain('authorize the key');
    });

    it('no key and no agent (ssh2), without a terminal: exit 1, says what it looked for and how to get a key', async () => {
      const { lab } = ctx;
      if (lab.usersMissing || !lab.clientUser) return void console.warn(`skipped: ${lab.usersMissing}`);
      // The client user's own home decides what "no key" means: OpenSSH's default key files must not be there
      // (this lab's home for the user, which it sees at its passwd home).
      const defaults = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((k) =>
        join(lab.clientUserFiles?.home ?? '', '.ssh', k),
      );
      expect(defaults.filter((f) => existsSync(f))).toEqual([]);
      const files = lab.clientUserFiles;
      if (!files) throw new Error('no client user files');
      const text = lab
        .configText({ knownHostsFile: files.knownHostsFile, sshClient: 'ssh2' })
        .replace(/^ {2}identity_file: .*\n/m, '');
      const state = join(files.dir, 'state-nokey');
      const r = await runWithoutTerminal(lab, ['up', 'target', '--no-connect'], {
        config: lab.writeClientUserFile('faults-nokey.yaml', text),
        env: { XDG_STATE_HOME: state },
        asClientUser: true,
      });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toContain(
        'connect on bastion: no key to log in to bastion with: no identity file (none named, and no ~/.ssh/id_ed25519, id_ecdsa or id_rsa), no ssh-agent (SSH_AUTH_SOCK is not set), and no terminal to ask for a password',
      );
      expect(r.stderr).toContain('hint: set identity_file for bastion, create a key (ssh-keygen -t ed25519)');
      expect(r.ms).toBeLessThan(5_000);
      expect(await sessionProcesses(lab)).toEqual([]);
      expect(recordsIn(state)).toEqual([]);
    });
  });

  describe('hops that do not answer', () => {
    it.each(['ssh2', 'openssh'] as const)(
      'the first hop drops every packet (%s): exit 1 within connect_timeout, naming the hop',
      async (client) => {
        const { lab } = ctx;
        await lab.dropShare('client', 100);
        const s = await sessions.start(['up', 'target'], {
          config: config(lab, client, { connectTimeout: 3 }),
        });
        const started = Date.now();
        const err = await expectEnded(s, 1, 20_000);
        expect(Date.now() - started).toBeLessThan(8_000);
        expect(err).toMatch(
          /connect on bastion: bastion \(root@192\.0\.2\.1:22\) did not (complete the SSH handshake|answer) within 3 s/,
        );
        expect(err).toContain(
          'hint: check that sshd listens at 192.0.2.1:22 and that this machine can reach it',
        );
      },
    );

    // One connect_timeout (5 s), not two: teardown opens no chain past the hop that did not answer.
    const cases = SSH_CLIENTS.flatMap((client) =>
      (
        [
          ['bastion2', 'the hop behind the first', 'bastion', 1],
          ['target', 'the third hop', 'bastion2', 2],
        ] as const
      ).map(([hop, which, before, relays]) => [which, client, hop, before, relays] as const),
    );
    it.each(cases)(
      '%s drops every packet (%s): exit 1 within one connect_timeout, naming it and the hop before; the relays started are stopped',
      async (_which, client, hop, before, relays) => {
        const { lab } = ctx;
        await lab.dropShare(hop, 100);
        const s = await sessions.start(['up', 'target'], {
          config: config(lab, client, { connectTimeout: 5 }),
        });
        const started = Date.now();
        const err = await expectEnded(s, 1, 30_000);
        expect(Date.now() - started, err).toBeLessThan(9_500);
        const address = ADDRESS[hop];
        expect(err).toMatch(
          client === 'ssh2'
            ? `connect on ${hop}: ${before} did not open a connection to ${hop} (root@${address}:22) within 5 s`
            : `connect on ${hop}: ${hop} (root@${address}:22) did not answer through ${before} within 5 s`,
        );
        expect(err).toContain(`${before} can reach ${address}:22`);
        expect(err).toMatch(new RegExp(`ended; stopped ${relays} process\\(es\\)`));
        expect(err).not.toMatch(/not stopped/);
      },
    );
  });

  describe('signals', () => {
    // SIGTERM at every step: see 'down from another terminal at every step' below.
    it.each(['connect', 'server', 'relay', 'client'])(
      'SIGHUP (the terminal closed) before the %s step: exit 129, what was started is stopped',
      async (step) => {
        const s = await sessions.start(['up', 'target'], { env: { MOSHCTL_TEST_HOLD: step } });
        await waitForStderr(s, `holding before step ${step}`);
        process.kill((await readRecord(s)).pid, 'SIGHUP');
        const err = await expectEnded(s, 129);
        expect(err).toMatch(/^moshctl: interrupted by SIGHUP$/m);
        expect(err).toMatch(/ended; stopped \d+ process\(es\)/);
        expect(err).not.toMatch(/not stopped|unexpected error/);
      },
    );

    it.each([
      ['SIGHUP', 129],
      ['SIGTERM', 143],
      ['Ctrl-C', 130],
    ] as const)(
      '%s while teardown waits on a relay that does not answer: teardown finishes, exit %i',
      async (signal, code) => {
        const { lab } = ctx;
        const s = await sessions.start(['up', 'target']);
        await waitForPrompt(s);
        const rec = await readRecord(s);
        const relay = rec.relays[0];
        if (!relay) throw new Error('no relay recorded');
        // A stopped relay answers no QUIT: teardown waits for it, then stops it by pid.
        process.kill(relay.pid, 'SIGSTOP');
        try {
          // The session ends as when mosh-client quits (the stopped relay would carry no `exit`):
          // killed outright, so its own exit code (137) cannot pass for the signal's; for Ctrl-C
          // with SIGTERM, so that it gives the terminal back (a raw terminal sends no SIGINT).
          const client = (await sessionProcesses(lab)).find((p) => /^client \d+ mosh-client/.test(p));
          process.kill(Number(client?.split(' ')[1]), signal === 'Ctrl-C' ? 'SIGTERM' : 'SIGKILL');
          await until('mosh-client did not exit', async () =>
            (await sessionProcesses(lab)).every((p) => !/^client \d+ mosh-client/.test(p)),
          );
          // Still tearing down: the record is there and the end not yet reported.
          expect(records(s)).toHaveLength(1);
          expect(stderrOf(s)).not.toMatch(/ended; stopped/);
          if (signal === 'Ctrl-C') await s.tmux.sendKey('C-c');
          else process.kill(rec.pid, signal);
          // The signal came while teardown waited; let the relay answer now, so the test need not wait for its kill.
          await sleep(300);
          process.kill(relay.pid, 'SIGCONT');
          const err = await expectEnded(s, code);
          expect(err).toMatch(/ended; stopped 3 process\(es\)/);
          expect(err).not.toMatch(/not stopped|unexpected error/);
        } finally {
          try {
            process.kill(relay.pid, 'SIGCONT');
          } catch {
            // stopped by teardown, as it should be
          }
        }
      },
    );

    it('Ctrl-C in the session goes to the remote shell, not to moshctl: the session goes on', async () => {
      const { lab } = ctx;
      const s = await sessions.start(['up', 'target']);
      await waitForPrompt(s);
      await s.tmux.sendKeys('sleep 300');
      await s.tmux.sendEnter();
      await until('sleep did not start on the target', async () =>
        (await lab.pidsIn('target')).some((pid) => cmdline(pid) === 'sleep 300'),
      );
      await s.tmux.sendKey('C-c');
      await until('Ctrl-C did not end the remote sleep', async () =>
        (await lab.pidsIn('target')).every((pid) => cmdline(pid) !== 'sleep 300'),
      );
      expect(await s.tmux.exitStatus()).toBeUndefined();
      await expectWorkingSession(s);
    });
  });

  describe('concurrent up and down', () => {
    it.each(['connect', 'server', 'relay', 'client'])(
      'down from another terminal while up waits before the %s step: up exits 143, down 0, nothing left',
      async (step) => {
        const { lab } = ctx;
        const s = await sessions.start(['up', 'target'], { env: { MOSHCTL_TEST_HOLD: step } });
        await waitForStderr(s, `holding before step ${step}`);
        const down = await moshctlBeside(lab, s, ['down', 'target']);
        expect(down.code, down.stderr).toBe(0);
        expect(down.stdout).toMatch(/^target-\S+: stopped by its moshctl up process \(pid \d+\)$/m);
        const err = await expectEnded(s, 143);
        expect(err).toMatch(/^moshctl: interrupted by SIGTERM$/m);
        expect(err).not.toMatch(/not stopped|unexpected error/);
        const again = await moshctlBeside(lab, s, ['down', 'target']);
        expect(again).toMatchObject({ code: 0, stdout: 'no session named target to stop\n' });
      },
    );
  });

  it('20 % packet loss on the client link from the start: up connects through it, the session works', async () => {
    const { lab } = ctx;
    await lab.dropShare('client', 20);
    // Each lost handshake segment waits out TCP's growing retransmission timeout: a hop's
    // handshake took 4-14 s here, now and then more than connect_timeout's default 10 s.
    const s = await sessions.start(['up', 'target'], { config: config(lab, 'ssh2', { connectTimeout: 30 }) });
    const started = Date.now();
    await waitForPrompt(s, 60_000);
    console.log(`up under 20 % loss: prompt after ${Date.now() - started} ms`);
    await typeAndCheck(lab, s, 30_000);
    await lab.clearDrops();
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
    expect(records(s)).toEqual([]);
  });
});

describe.skipIf(reason)('a bastion that forbids TCP forwarding (sshd AllowTcpForwarding no)', () => {
  const ctx = useLab({ sshdConfig: { bastion: ['AllowTcpForwarding no'] } });
  const { start } = useSessions(ctx);

  it.each(['ssh2', 'openssh'] as const)(
    '%s: exit 1, blames the bastion and names its sshd option; nothing is left on it',
    async (client) => {
      const { lab } = ctx;
      const s = await start(['up', 'target'], { config: config(lab, client) });
      const code = await waitForExit(s, 30_000);
      const err = stderrOf(s);
      expect(code, err).toBe(1);
      expect(err).toContain(
        'connect on target: bastion refused to forward a connection to target (203.0.113.10:22): administratively prohibited',
      );
      expect(err).toContain('hint: allow TCP forwarding for root on bastion: AllowTcpForwarding yes');
      expect(err).not.toMatch(/not stopped|unexpected error/);
      expect(await settleNoSessionProcesses(lab), err).toEqual([]);
      expect(records(s)).toEqual([]);
    },
  );
});

const users = findLabUsers();
const NOISY_RC = [
  '# moshctl faults test: a login that talks on both streams before anything runs',
  'echo "Welcome to $(hostname), $USER. Last backup: never."',
  'echo "You have new mail." >&2',
  'echo',
  'echo "  * Documentation: https://help.example.test"',
  'echo "stty: standard input: Inappropriate ioctl for device" >&2',
  '',
].join('\n');
const BANNER = 'Authorized use only. All activity is logged.\n';
const MOTD = 'The programs included with this lab are free software.\n';

describe.skipIf(reason || users.missing)(
  'logins that talk: a banner and a motd on every hop, a noisy ~/.bashrc on the bastion and the target',
  () => {
    const home = users.login.find((u) => u.name === 'mctl-bash')?.home ?? '/home/mctl-bash';
    const sshd = ['Banner /etc/issue.net', 'PrintMotd yes'];
    const banner = [
      { target: '/etc/issue.net', text: BANNER },
      { target: '/etc/motd', text: MOTD },
    ];
    const ctx = useLab({
      sshdConfig: { bastion: sshd, target: sshd },
      mounts: {
        bastion: [...banner, { target: join(home, '.bashrc'), text: NOISY_RC }],
        target: [...banner, { target: join(home, '.bashrc'), text: NOISY_RC }],
      },
    });
    const made: string[] = [];
    const { start } = useSessions(ctx);
    afterAll(() => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });

    it.each(['ssh2', 'openssh'] as const)(
      '%s, as mctl-bash on both hops: the relay and mosh-server start through the noise, typing reaches the target, exit 0',
      async (client) => {
        const { lab } = ctx;
        // The premise, seen from plain ssh: the target's login talks on both streams.
        const probe = await lab.exec('client', lab.sshArgv('target', ['true'], { user: 'mctl-bash' }));
        expect(probe.stdout).toContain('Welcome to');
        expect(probe.stderr).toContain('You have new mail.');
        expect(probe.stderr).toContain(BANNER.trim());
        const probeBastion = await lab.exec(
          'client',
          lab.sshArgv('bastion', ['true'], { user: 'mctl-bash' }),
        );
        expect(probeBastion.stdout).toContain('Welcome to');
        // The relay's own line is looked for past whatever the bastion's rc printed first.
        const text = readFileSync(config(lab, client), 'utf8').replace(
          /^( {2}(?:bastion|target):\n)/gm,
          '$1    user: mctl-bash\n',
        );
        const file = join(lab.dir, `faults-talk-${client}.yaml`);
        writeFileSync(file, text, { mode: 0o600 });
        const s = await start(['up', 'target'], { config: file });
        const dir = writableDir(made);
        await typeAndCheck(lab, s, 30_000, 'target', dir);
        // The interactive shell mosh-server started talks too, on the screen where it belongs.
        await s.tmux.waitFor('Welcome to');
        expect(stderrOf(s)).not.toMatch(/Welcome to|You have new mail/);
        expect(await exitSession(s)).toBe(0);
        expect(await settleNoSessionProcesses(lab)).toEqual([]);
        expect(records(s)).toEqual([]);
      },
    );
  },
);

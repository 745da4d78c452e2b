// moshctl up when a step fails or a signal arrives, in the lab: every ending
// has its exit code, a message that names the step and host and says how to
// fix it, and leaves no session process and no state record behind.
import { existsSync, readFileSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { HostName, Lab } from '../../src/lab/index.js';
import {
  cmdline,
  records,
  sessionProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForExit,
  waitForPrompt,
  waitForStderr,
  exitSession,
  type UpSession,
  useSessions,
  moshctlBeside,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

interface HostDoc {
  address: string;
  port?: number;
  identity_file?: string;
  known_hosts?: string;
  relay?: { ports?: string | number; runtime?: string };
}
interface ConfigDoc {
  defaults: { user?: string; identity_file?: string; known_hosts?: string };
  mosh: { server_ports?: string | number };
  hosts: Record<string, HostDoc>;
}

let configs = 0;

/** A copy of the lab's config, changed by `edit`, written in the lab dir; returns its path. */
function labConfig(lab: Lab, edit: (doc: ConfigDoc) => void): string {
  const doc = parse(readFileSync(lab.configFile, 'utf8')) as ConfigDoc;
  edit(doc);
  const file = join(lab.dir, `config-${++configs}.yaml`);
  writeFileSync(file, stringify(doc), { mode: 0o600 });
  return file;
}

function host(doc: ConfigDoc, name: string): HostDoc {
  const h = doc.hosts[name];
  if (!h) throw new Error(`lab config has no host ${name}`);
  return h;
}

/** The public host key ("type base64") the lab gave `name`'s sshd. */
function hostPublicKey(lab: Lab, name: HostName): string {
  return readFileSync(join(lab.dir, name, 'ssh_host_ed25519_key.pub'), 'utf8')
    .trim()
    .split(/\s+/)
    .slice(0, 2)
    .join(' ');
}

/** Holds a UDP port in a host's namespace; resolves once it is bound. Returns the pid. */
async function holdUdpPort(lab: Lab, on: HostName, port: number): Promise<number> {
  const log = join(lab.dir, `hold-${on}-${port}.log`);
  const script = [
    'import socket, sys, time',
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `s.bind(("0.0.0.0", ${port}))`,
    'print("bound", flush=True)',
    'time.sleep(300)',
  ].join('\n');
  const pid = lab.spawn(on, ['python3', '-c', script], { logFile: log });
  const deadline = Date.now() + 10_000;
  while (!(existsSync(log) && readFileSync(log, 'utf8').includes('bound'))) {
    if (Date.now() > deadline)
      throw new Error(`could not hold UDP ${port} on ${on}: ${readFileSync(log, 'utf8')}`);
    await sleep(50);
  }
  return pid;
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

interface RecordFile {
  pid: number;
  server?: { host: string; pid: number; port: number };
  relays: { host: string; pid: number; port: number }[];
}

/** The session's state record (waits for it to be written). */
async function readRecord(s: UpSession): Promise<RecordFile> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [file] = records(s);
    if (file)
      return JSON.parse(readFileSync(join(s.stateHome, 'moshctl', 'sessions', file), 'utf8')) as RecordFile;
    if (Date.now() > deadline) throw new Error(`no state record; stderr:\n${stderrOf(s)}`);
    await sleep(100);
  }
}

describe.skipIf(reason).each(SSH_CLIENTS)('moshctl up: failures, signals and teardown (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  // Messages of failing hosts are the ssh layer's own: those blocks are for ssh2
  // (openssh's are in openssh-chain.test.ts), and exist only there rather than show as skipped.
  const ssh2Only = (name: string, body: () => void): void => {
    if (sshClient === 'ssh2') describe(name, body);
  };
  const spawned: number[] = [];
  const sessions = useSessions(ctx, () => {
    for (const pid of spawned.splice(0)) killPid(pid);
  });

  async function start(args: string[], opts: { env?: Record<string, string>; config?: string } = {}) {
    const s = await sessions.start(args, opts);
    return s;
  }

  /** moshctl exits with `code`, nothing is left on any host, no record remains; returns stderr. */
  async function expectEnded(s: UpSession, code: number, timeoutMs = 40_000): Promise<string> {
    const got = await waitForExit(s, timeoutMs);
    const err = stderrOf(s);
    expect(got, err).toBe(code);
    expect(await settleNoSessionProcesses(ctx.lab), err).toEqual([]);
    expect(records(s)).toEqual([]);
    return err;
  }

  /** A session that works: keystrokes reach the target, `exit` ends it cleanly. */
  async function expectWorkingSession(s: UpSession): Promise<void> {
    await waitForPrompt(s);
    await typeAndCheck(ctx.lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(ctx.lab)).toEqual([]);
    expect(records(s)).toEqual([]);
  }

  describe('Ctrl-C during each step', () => {
    // What runs while up holds before the step (steps that do not depend on it
    // go on: the relay does not wait for the server, nor the server for the relay),
    // and so must be stopped.
    it.each([
      { step: 'connect', started: [] as string[] },
      { step: 'server', started: ['bastion relay'] },
      { step: 'relay', started: ['target mosh-server'] },
      { step: 'client', started: ['target mosh-server', 'bastion relay'] },
    ])('before $step: exits 130 and stops what was started ($started)', async ({ step, started }) => {
      const { lab } = ctx;
      const s = await sessions.start(['up', 'target'], { env: { MOSHCTL_TEST_HOLD: step } });
      await waitForStderr(s, `holding before step ${step}`);
      const want = (r: RecordFile): boolean =>
        (r.server !== undefined) === started.includes('target mosh-server') &&
        r.relays.length === (started.includes('bastion relay') ? 1 : 0);
      // Steps beside the held one finish on their own time: wait for the record to show them.
      for (let i = 0; i < 100 && !want(await readRecord(s)); i++) await sleep(100);
      const running = await sessionProcesses(lab);
      // mosh-server shows as two processes (the server and its pty child) until a client
      // comes, and a relay's launcher may still be exiting: count hosts, check pids by record.
      const servers = running.filter((p) => p.startsWith('target ') && p.includes('mosh-server'));
      const relays = running.filter((p) => p.startsWith('bastion ') && p.includes('--idle-timeout'));
      const list = running.join('\n');
      expect(servers.length > 0, list).toBe(started.includes('target mosh-server'));
      expect(relays.length > 0, list).toBe(started.includes('bastion relay'));
      // No mosh-client yet (under openssh, a relay's control channel is a local ssh process).
      expect(
        running.filter((p) => p.startsWith('client ') && p.includes('mosh-client')),
        list,
      ).toEqual([]);
      expect(records(s)).toHaveLength(1);
      // The record names the very mosh-server and relay that run, for teardown to stop by pid.
      const record = await readRecord(s);
      const pidsOf = (lines: string[]): number[] => lines.map((p) => Number(p.split(' ')[1]));
      if (started.includes('target mosh-server')) {
        expect(pidsOf(servers), list).toContain(record.server?.pid);
      } else {
        expect(record.server).toBeUndefined();
      }
      expect(record.relays).toHaveLength(relays.length > 0 ? 1 : 0);
      for (const r of record.relays) expect(pidsOf(relays), list).toContain(r.pid);

      await s.tmux.sendKey('C-c');
      const code = await waitForExit(s);
      const err = stderrOf(s);
      expect(code, err).toBe(130);
      expect(await settleNoSessionProcesses(lab), err).toEqual([]);
      expect(records(s)).toEqual([]);
      expect(err).toMatch(/^moshctl: interrupted by SIGINT$/m);
      expect(err).toMatch(new RegExp(`ended; stopped ${started.length} process\\(es\\)`));
      expect(err).not.toMatch(/not stopped/);
    });
  });

  describe('a signal to moshctl while mosh-client runs', () => {
    it.each([
      { signal: 'SIGTERM' as const, code: 143 },
      { signal: 'SIGHUP' as const, code: 129 },
    ])('$signal: mosh-client ends, teardown runs, exit $code', async ({ signal, code }) => {
      const { lab } = ctx;
      const s = await start(['up', 'target']);
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      const running = await sessionProcesses(lab);
      expect(running.filter((p) => p.startsWith('client ') && p.includes('mosh-client'))).toHaveLength(1);
      process.kill((await readRecord(s)).pid, signal);
      const err = await expectEnded(s, code);
      expect(err).toMatch(/ended; stopped 2 process\(es\)/);
      expect(err).not.toMatch(/not stopped|unexpected error/);
    });

    it('a second signal during a teardown that waits on a silent hop: exit 130 at once; a detached cleanup, shown by status with its log, finishes once the hop answers', async () => {
      const { lab } = ctx;
      const s = await start(['up', 'target']);
      await waitForPrompt(s);
      // The bastion's end of the client link goes down: packets vanish without an answer.
      await lab.linkDown('client');
      let log = '';
      try {
        const pid = (await readRecord(s)).pid;
        process.kill(pid, 'SIGTERM');
        await sleep(1000);
        expect(records(s)).toHaveLength(1); // still tearing down: the QUIT gets no BYE
        const asked = Date.now();
        process.kill(pid, 'SIGINT');
        const code = await waitForExit(s, 10_000);
        const err = stderrOf(s);
        expect(code, err).toBe(130);
        expect(Date.now() - asked, err).toBeLessThan(5_000);
        const said =
          /stopped waiting \(SIGINT again\); the teardown goes on in the background \(pid (\d+)\): "moshctl status" shows it, its log is (\S+)$/m.exec(
            err,
          );
        expect(said, err).not.toBeNull();
        log = said?.[2] ?? '';
        expect(records(s)).toHaveLength(1);
        const status = await moshctlBeside(lab, s, ['status']);
        expect(status.stdout).toMatch(/ client cleaning up\n/);
        expect(status.stdout).toContain(
          `  cleanup its moshctl up stopped waiting; pid ${said?.[1] ?? ''} stops what is left, its log: ${log}\n`,
        );
        expect(readFileSync(log, 'utf8')).toMatch(/moshctl up \(pid \d+\) stopped waiting \(SIGINT again\)/);
      } finally {
        await lab.linkUp('client');
      }
      // The cleanup tries again until the bastion answers, then removes the record and its log.
      const deadline = Date.now() + 60_000;
      while (records(s).length > 0 && Date.now() < deadline) await sleep(250);
      expect(records(s), log && existsSync(log) ? readFileSync(log, 'utf8') : '').toEqual([]);
      expect(existsSync(log)).toBe(false);
      expect(await settleNoSessionProcesses(lab)).toEqual([]);
      expect((await moshctlBeside(lab, s, ['status'])).stdout).toBe('no sessions\n');
    });

    it('SIGTERM after the ssh connection dropped (as on a roam): teardown connects again', async () => {
      const { lab } = ctx;
      const s = await start(['up', 'target']);
      await waitForPrompt(s);
      // End moshctl's ssh connection on the bastion (its per-connection sshd processes):
      // the mosh session lives on over UDP, but teardown must open a new chain.
      // (OpenSSH 9 titles its listener "sshd: /usr/sbin/sshd … [listener]": that one stays.)
      const sessions = (await lab.pidsIn('bastion')).filter(
        (pid) => cmdline(pid).startsWith('sshd:') && !cmdline(pid).includes('[listener]'),
      );
      expect(sessions.length).toBeGreaterThan(0);
      for (const pid of sessions) killPid(pid);
      await typeAndCheck(lab, s);
      process.kill((await readRecord(s)).pid, 'SIGTERM');
      const err = await expectEnded(s, 143);
      expect(err).toMatch(/ended; stopped 2 process\(es\)/);
      expect(err).not.toMatch(/not stopped|unexpected error/);
    });
  });

  ssh2Only('hosts that cannot be used', () => {
    it('an unreachable bastion: exit 1, names the bastion and its address', async () => {
      const config = labConfig(ctx.lab, (d) => (host(d, 'bastion').address = '192.0.2.99'));
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1, 40_000);
      expect(err).toMatch(/connect on bastion: .*bastion \(root@192\.0\.2\.99:22\)/);
      expect(err).toMatch(/hint: .*192\.0\.2\.99|hint: check the address and port of bastion/);
    });

    it('a key the target does not accept: exit 1, names the target and the user', async () => {
      const { lab } = ctx;
      const key = join(lab.dir, 'stranger_ed25519');
      if (!existsSync(key)) {
        const r = await lab.exec('client', ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key]);
        expect(r.code, r.stderr).toBe(0);
      }
      const config = labConfig(lab, (d) => (host(d, 'target').identity_file = key));
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1);
      expect(err).toMatch(
        /connect on target: target \(root@203\.0\.113\.10:22\) refused to log in user root/,
      );
      expect(err).toMatch(/hint: authorize the key for root on target/);
    });

    it('an unknown host key: exit 1, shows its SHA256 fingerprint and how to add it', async () => {
      const { lab } = ctx;
      const empty = join(lab.dir, 'known_hosts.empty');
      writeFileSync(empty, '');
      const config = labConfig(lab, (d) => (d.defaults.known_hosts = empty));
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1);
      expect(err).toMatch(/connect on bastion: host key of bastion \(root@192\.0\.2\.1:22\) is not in /);
      expect(err).toMatch(/ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}/);
      expect(err).toMatch(
        /then log in once with ssh to record it \(or append `ssh-keyscan -p 22 192\.0\.2\.1` to .*known_hosts\.empty\)/,
      );
      expect(err).toContain('host_key_policy: accept-new');
      // The fingerprint shown is the bastion's real one.
      const fp = await lab.exec('client', [
        'ssh-keygen',
        '-lf',
        join(lab.dir, 'bastion', 'ssh_host_ed25519_key.pub'),
      ]);
      const want = /SHA256:\S+/.exec(fp.stdout)?.[0];
      expect(want).toBeDefined();
      expect(err).toContain(want);
    });

    it('a changed host key: exit 1, warns it could be an attack', async () => {
      const { lab } = ctx;
      const changed = join(lab.dir, 'known_hosts.changed');
      // The bastion's line carries the outsider's key; every other line as the lab wrote it.
      const lines = readFileSync(lab.knownHostsFile, 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('192.0.2.1 '));
      lines.unshift(`192.0.2.1 ${hostPublicKey(lab, 'outsider')}`);
      writeFileSync(changed, lines.join('\n') + '\n');
      const config = labConfig(lab, (d) => (d.defaults.known_hosts = changed));
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1);
      expect(err).toMatch(/connect on bastion: host key of bastion \(root@192\.0\.2\.1:22\) does not match /);
      expect(err).toMatch(/man-in-the-middle attack/);
      expect(err).toMatch(/hint: if the key was changed on purpose/);
    });

    it('an unknown host name on the command line: exit 2 with a suggestion, nothing started', async () => {
      const s = await start(['up', 'targte']);
      const err = await expectEnded(s, 2, 10_000);
      expect(err).toMatch(/"targte"/);
      expect(err).toMatch(/did you mean "target"\?/);
      expect(existsSync(join(s.stateHome, 'moshctl', 'sessions'))).toBe(false);
    });
  });

  ssh2Only('mosh-server missing on the target', () => {
    // A second sshd in the target's namespace, on port 2222, whose sessions get
    // a PATH (sshd_config SetEnv) with only the programs symlinked into `bin`:
    // the machine's mosh install is never touched.
    let sshdPid: number | undefined;
    let bin = '';
    let config = '';

    async function startSecondSshd(lab: Lab): Promise<void> {
      bin = join(lab.dir, 'target-bin');
      mkdirSync(bin, { recursive: true });
      for (const p of ['env', 'ps', 'sleep', 'ip']) {
        const r = await lab.exec('client', ['sh', '-c', `command -v ${p}`]);
        symlinkSync(r.stdout.trim(), join(bin, p));
      }
      // sshd keeps the first SetEnv of a block: PATH joins the lab's own SetEnv lines, or comes first.
      const base = readFileSync(join(lab.dir, 'target', 'sshd_config'), 'utf8')
        .split('\n')
        .map((l) => l.replace(/^ListenAddress (\S+):22$/, 'ListenAddress $1:2222'))
        .map((l) => l.replace(/^(\s*SetEnv .*)$/, `$1 PATH=${bin}`));
      const conf = join(lab.dir, 'target', 'sshd_config.2222');
      writeFileSync(conf, [`SetEnv PATH=${bin}`, ...base, ''].join('\n'), { mode: 0o600 });
      sshdPid = lab.spawn('target', ['/usr/sbin/sshd', '-D', '-e', '-f', conf], {
        logFile: join(lab.dir, 'target', 'sshd.2222.log'),
      });
      const deadline = Date.now() + 10_000;
      while (!(await lab.canReach('bastion', '203.0.113.10', 2222))) {
        if (Date.now() > deadline) throw new Error('the second sshd on the target did not come up');
        await sleep(100);
      }
      const knownHosts = join(lab.dir, 'known_hosts.2222');
      writeFileSync(
        knownHosts,
        readFileSync(lab.knownHostsFile, 'utf8') + `[203.0.113.10]:2222 ${hostPublicKey(lab, 'target')}\n`,
      );
      config = labConfig(lab, (d) => {
        d.defaults.known_hosts = knownHosts;
        host(d, 'target').port = 2222;
      });
    }

    afterEach(() => {
      if (sshdPid !== undefined) killPid(sshdPid);
      sshdPid = undefined;
    });

    it('exit 1, "mosh-server is not installed" on the target, naming where a login shell finds it; works once it is on the PATH', async () => {
      const { lab } = ctx;
      await startSecondSshd(lab);
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1);
      expect(err).toMatch(/start mosh-server on target: mosh-server is not installed/);
      // A login shell's PATH (/etc/profile's) has /usr/bin, where Debian's mosh-server is.
      expect(err).toContain(
        'hint: found at /usr/bin/mosh-server (a login shell finds it there): set mosh.server: /usr/bin/mosh-server for that host in moshproxy.yaml, or run up --server /usr/bin/mosh-server',
      );

      // Positive twin: the same sshd and config, with mosh-server on that PATH.
      symlinkSync('/usr/bin/mosh-server', join(bin, 'mosh-server'));
      const ok = await start(['up', 'target'], { config });
      await expectWorkingSession(ok);
    });
  });

  ssh2Only('no free UDP port', () => {
    it('for mosh-server: exit 1, says to widen mosh.server_ports; works once the port is free', async () => {
      const { lab } = ctx;
      const holder = await holdUdpPort(lab, 'target', 60009);
      spawned.push(holder);
      const config = labConfig(lab, (d) => (d.mosh.server_ports = '60009'));
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1);
      expect(err).toMatch(/start mosh-server on target: mosh-server found no free UDP port/);
      expect(err).toMatch(/hint: widen mosh\.server_ports/);

      killPid(holder);
      await sleep(200);
      const ok = await start(['up', 'target'], { config });
      await expectWorkingSession(ok);
    });

    it('for the relay: exit 1, names the bastion and relay.ports, stops the mosh-server it started', async () => {
      const { lab } = ctx;
      const holder = await holdUdpPort(lab, 'bastion', 61009);
      spawned.push(holder);
      const config = labConfig(lab, (d) => (host(d, 'bastion').relay = { ports: '61009' }));
      const s = await start(['up', 'target'], { config });
      const err = await expectEnded(s, 1);
      expect(err).toMatch(/start relay on bastion: the relay did not start: no free UDP port/);
      expect(err).toMatch(/hint: widen relay\.ports of bastion/);
      // mosh-server had been started on the target: teardown stopped it.
      expect(err).toMatch(/ended; stopped 1 process\(es\)/);

      killPid(holder);
      await sleep(200);
      const ok = await start(['up', 'target'], { config });
      await expectWorkingSession(ok);
    });
  });

  ssh2Only('weaker relay runtimes', () => {
    it('socat: warns that it is a fallback, carries a session, tears down', async () => {
      const { lab } = ctx;
      const config = labConfig(
        lab,
        (d) => (host(d, 'bastion').relay = { ports: '61001-61010', runtime: 'socat' }),
      );
      const s = await start(['up', 'target'], { config });
      await waitForPrompt(s);
      const running = await sessionProcesses(lab);
      expect(running.filter((p) => p.startsWith('bastion ') && p.includes('socat'))).not.toEqual([]);
      expect(running.filter((p) => p.includes('--idle-timeout'))).toEqual([]);
      await typeAndCheck(lab, s);
      expect(await exitSession(s)).toBe(0);
      expect(await settleNoSessionProcesses(lab)).toEqual([]);
      expect(records(s)).toEqual([]);
      expect(stderrOf(s)).toMatch(/warning: bastion: socat relay \(a fallback/);
    });

    it('nc: warns that roaming will not survive it, carries a session, tears down', async () => {
      const { lab } = ctx;
      const config = labConfig(
        lab,
        (d) => (host(d, 'bastion').relay = { ports: '61001-61010', runtime: 'nc' }),
      );
      const s = await start(['up', 'target'], { config });
      await waitForPrompt(s);
      const running = await sessionProcesses(lab);
      expect(running.filter((p) => p.startsWith('bastion ') && /\bnc\b/.test(p))).not.toEqual([]);
      await typeAndCheck(lab, s);
      expect(await exitSession(s)).toBe(0);
      expect(await settleNoSessionProcesses(lab)).toEqual([]);
      expect(records(s)).toEqual([]);
      expect(stderrOf(s)).toMatch(/warning: bastion: nc relay .*a roam or a 10\+ s outage ends the session/);
    });
  });
});

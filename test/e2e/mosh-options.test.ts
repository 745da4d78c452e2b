// mosh's own options through moshctl, in the lab: where mosh-server listens
// (mosh.bind_server, as mosh's --bind-server: `-s` by default, so it answers
// on the address the last relay sends to); what mosh-client is run with
// (--predict, --predict-overwrite, --no-init, mosh.client), read from its
// environment and seen on the terminal; and a target whose mosh-server is
// off the PATH of a non-interactive ssh session, as with Homebrew on macOS
// (mosh.server, --server, and where `up` says it found one).
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { DoctorReport } from '../../src/doctor/types.js';
import { realProgramPath, type Lab } from '../../src/lab/index.js';
import {
  expectEnded,
  exitSession,
  records,
  runWithoutTerminal,
  sessionProcesses,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  useSessions,
  waitForExit,
  waitForPrompt,
} from './moshctl.js';
import { e2eSkipReason, SSH_CLIENTS, useLab } from './support.js';

const reason = e2eSkipReason();

interface ConfigDoc {
  mosh?: Record<string, unknown>;
  hosts: Record<string, { mosh?: Record<string, unknown> }>;
}

let configs = 0;

/** A copy of the lab's config, changed by `edit`, written in the lab dir; returns its path. */
function labConfig(lab: Lab, edit: (doc: ConfigDoc) => void): string {
  const doc = parse(readFileSync(lab.configFile, 'utf8')) as ConfigDoc;
  edit(doc);
  const file = join(lab.dir, `mosh-options-${++configs}.yaml`);
  writeFileSync(file, stringify(doc), { mode: 0o600 });
  return file;
}

/** mosh-server's command line on the target, from the session's processes. */
async function serverArgv(lab: Lab): Promise<string> {
  const found = (await sessionProcesses(lab)).filter((p) => /^target \d+ \S*mosh-server new /.test(p));
  expect(found).toHaveLength(1);
  return (found[0] ?? '').replace(/^target \d+ /, '');
}

/** The local address:port mosh-server's UDP socket is bound to on the target (ss). */
async function serverSocket(lab: Lab): Promise<string> {
  const r = await lab.exec('target', ['ss', '-Hunlp']);
  const line = r.stdout.split('\n').find((l) => l.includes('"mosh-server"'));
  expect(line, r.stdout).toBeDefined();
  return line?.trim().split(/\s+/)[3] ?? '';
}

describe.skipIf(reason).each(SSH_CLIENTS)('where mosh-server listens (%s)', (sshClient) => {
  const ctx = useLab({ sshClient });
  const sessions = useSessions(ctx);

  it('by default -s: it listens on the address the relay sends to (not every address), and the session works', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    await waitForPrompt(s);
    expect(await serverArgv(lab)).toMatch(/ new -s -p /);
    // The address the bastion's ssh connection came in on: the target's, which the relay forwards to.
    expect(await serverSocket(lab)).toMatch(
      new RegExp(`^${lab.hosts.target.sshAddress.replaceAll('.', '\\.')}:6\\d{4}$`),
    );
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
  });

  it('--bind-server any: no option, every IPv4 address (mosh-server on its own); an address in the file: -i', async () => {
    const { lab } = ctx;
    const any = await sessions.start(['up', 'target', '--bind-server', 'any']);
    await waitForPrompt(any);
    expect(await serverArgv(lab)).toMatch(/ new -p /);
    expect(await serverSocket(lab)).toMatch(/^0\.0\.0\.0:6\d{4}$/);
    await typeAndCheck(lab, any);
    expect(await exitSession(any)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(any)).toEqual([]);

    const address = lab.hosts.target.sshAddress;
    const config = labConfig(lab, (d) => {
      const target = d.hosts.target;
      if (target) target.mosh = { ...target.mosh, bind_server: address };
    });
    const named = await sessions.start(['up', 'target'], { config });
    await waitForPrompt(named);
    expect(await serverArgv(lab)).toContain(` new -i ${address} -p `);
    expect(await serverSocket(lab)).toMatch(new RegExp(`^${address.replaceAll('.', '\\.')}:6\\d{4}$`));
    await typeAndCheck(lab, named);
    expect(await exitSession(named)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(named)).toEqual([]);
  });

  it('an address the target does not have: mosh-server falls back to every IPv4 address, and moshctl says so', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target', '--bind-server', '198.51.100.99']);
    await waitForPrompt(s);
    expect(await serverSocket(lab)).toMatch(/^0\.0\.0\.0:6\d{4}$/);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(stderrOf(s)).toContain(
      'warning: target: mosh-server could not listen on 198.51.100.99 (bind: Cannot assign requested address) and listens on every IPv4 address instead; set mosh.bind_server (or --bind-server) to ssh or to an address that host has',
    );
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });
});

/** mosh-client's process on the client: its argv[0] and the MOSH_ variables of its environment. */
async function moshClient(lab: Lab): Promise<{ argv0: string; env: Record<string, string> }> {
  const found = (await sessionProcesses(lab)).filter((p) => /^client \d+ \S*mosh-client /.test(p));
  expect(found).toHaveLength(1);
  const pid = Number(found[0]?.split(' ')[1]);
  const env = Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter((v) => v.startsWith('MOSH_') && !v.startsWith('MOSH_KEY='))
      .map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]),
  );
  return { argv0: found[0]?.split(' ')[2] ?? '', env };
}

describe.skipIf(reason)("mosh-client as mosh's options ask (ssh2)", () => {
  const ctx = useLab({});
  const sessions = useSessions(ctx);

  it('--predict always --predict-overwrite --no-init: the variables mosh-client reads, and no alternate screen', async () => {
    const { lab } = ctx;
    const s = await sessions.start([
      'up',
      'target',
      '--predict',
      'always',
      '--predict-overwrite',
      '--no-init',
    ]);
    await waitForPrompt(s);
    expect((await moshClient(lab)).env).toEqual({
      MOSH_PREDICTION_DISPLAY: 'always',
      MOSH_PREDICTION_OVERWRITE: 'yes',
      MOSH_NO_TERM_INIT: '1',
    });
    // mosh-client without its terminal initialization string stays on the normal screen.
    expect(await s.tmux.alternateScreen()).toBe(false);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('mosh.predict from the file; without --no-init, mosh-client takes the alternate screen (the test can fail)', async () => {
    const { lab } = ctx;
    const config = labConfig(lab, (d) => (d.mosh = { ...d.mosh, predict: 'never' }));
    const s = await sessions.start(['up', 'target'], { config });
    await waitForPrompt(s);
    expect((await moshClient(lab)).env).toEqual({ MOSH_PREDICTION_DISPLAY: 'never' });
    expect(await s.tmux.alternateScreen()).toBe(true);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
  });

  it('--client PATH runs that mosh-client; one that is not there stops up before anything starts (exit 1)', async () => {
    const { lab } = ctx;
    const bin = join(lab.dir, 'client-bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync('/usr/bin/mosh-client', join(bin, 'mosh-client'));
    const s = await sessions.start(['up', 'target', '--client', join(bin, 'mosh-client')]);
    await waitForPrompt(s);
    expect((await moshClient(lab)).argv0).toBe(join(bin, 'mosh-client'));
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);

    const missing = await sessions.start(['up', 'target', '--client', join(bin, 'nope', 'mosh-client')]);
    expect(await waitForExit(missing)).toBe(1);
    const err = stderrOf(missing);
    expect(err).toContain(
      `mosh-client ${join(bin, 'nope', 'mosh-client')} (mosh.client, or --client) is not there or cannot run`,
    );
    expect(err).toContain('hint: check mosh.client (or --client)');
    expect(err).not.toMatch(/connecting/);
    expect(records(missing)).toEqual([]);
  });
});

/** A target whose mosh-server is off a non-interactive ssh session's PATH. */
const OFF_PATH = "a target whose mosh-server is off a non-interactive ssh session's PATH (ssh2)";

describe.skipIf(reason)(OFF_PATH, () => {
  // As on a Mac with Homebrew: mosh-server in /opt/homebrew/bin, which only a login
  // shell's PATH has. The machine's own mosh-server is hidden from the target (a file
  // that cannot run), and a copy of it is put at /opt/homebrew/bin/mosh-server there.
  const real = reason ? '/usr/bin/mosh-server' : realProgramPath('mosh-server');
  const ctx = useLab({ hide: { target: [real] }, mounts: { target: [{ target: '/opt', emptyDir: true }] } });
  const sessions = useSessions(ctx);
  const HOMEBREW = '/opt/homebrew/bin/mosh-server';
  const OLD = '/opt/old/bin/mosh-server';
  beforeAll(() => {
    const opt = ctx.lab.mountedFile('target', '/opt');
    const bin = join(opt, 'homebrew', 'bin');
    mkdirSync(bin, { recursive: true, mode: 0o755 });
    copyFileSync(real, join(bin, 'mosh-server'));
    chmodSync(join(bin, 'mosh-server'), 0o755);
    // For doctor only: a mosh-server that says it is 1.3.2 (doctor runs nothing but --version).
    mkdirSync(join(opt, 'old', 'bin'), { recursive: true, mode: 0o755 });
    writeFileSync(
      join(opt, 'old', 'bin', 'mosh-server'),
      '#!/bin/sh\necho "mosh-server (mosh 1.3.2) [build mosh 1.3.2]"\n',
      { mode: 0o755 },
    );
  });
  const serverConfig = (server: string): string =>
    labConfig(ctx.lab, (d) => {
      const target = d.hosts.target;
      if (target) target.mosh = { ...target.mosh, server };
    });

  it('up fails at once with where mosh-server is and the setting that names it; nothing is left', async () => {
    const { lab } = ctx;
    const s = await sessions.start(['up', 'target']);
    const err = await expectEnded(lab, s, 1);
    // The hidden one is there but cannot run (126); a missing one says "not installed" (127).
    expect(err).toMatch(/start mosh-server on target: mosh-server is there but cannot run: /);
    expect(err).toContain(
      `hint: found at ${HOMEBREW}: set mosh.server: ${HOMEBREW} for that host in moshproxy.yaml, or run up --server ${HOMEBREW}`,
    );
    // The relay started beside mosh-server is stopped.
    expect(err).toMatch(/ended; stopped 1 process\(es\)/);
  });

  it('with mosh.server, or --server, naming it: the session works, and teardown stops that mosh-server', async () => {
    const { lab } = ctx;
    const runs: [string[], { config?: string }][] = [
      [['up', 'target'], { config: serverConfig(HOMEBREW) }],
      [['up', 'target', '--server', HOMEBREW], {}],
    ];
    for (const [args, opts] of runs) {
      const s = await sessions.start(args, opts);
      await waitForPrompt(s);
      expect(await serverArgv(lab)).toMatch(new RegExp(`^${HOMEBREW} new -s -p `));
      await typeAndCheck(lab, s);
      expect(await exitSession(s)).toBe(0);
      expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
      expect(stderrOf(s)).toMatch(/stopped 2 process\(es\)/);
    }
  });

  it('doctor: the mosh-server up would run, where and which version; where one is when it fails; a warning for an older one', async () => {
    const { lab } = ctx;
    const missing = await runWithoutTerminal(lab, ['doctor', 'target']);
    expect(missing.code, missing.stderr).toBe(1);
    // sh's `command -v` passes over the hidden file that cannot run, where env (up) tries it.
    expect(missing.stdout).toMatch(/^ {2}FAIL {2}mosh-server {5}mosh-server is not installed /m);
    expect(missing.stdout).toContain(
      `  hint: found at ${HOMEBREW}: set mosh.server: ${HOMEBREW} for that host`,
    );

    const named = await runWithoutTerminal(lab, ['doctor', 'target'], { config: serverConfig(HOMEBREW) });
    expect(named.code, named.stdout + named.stderr).toBe(0);
    expect(named.stdout).toContain(`  ok    mosh-server     ${HOMEBREW}: mosh-server (mosh 1.`);
    expect(named.stdout).toMatch(/^ {2}ok {4}mosh versions /m);

    const old = await runWithoutTerminal(lab, ['doctor', 'target', '--json'], { config: serverConfig(OLD) });
    expect(old.code, old.stderr).toBe(0);
    const report = JSON.parse(old.stdout) as DoctorReport;
    expect(report.firstFailure).toBeNull();
    expect(report.checks.find((c) => c.check === 'mosh-versions')).toMatchObject({
      status: 'warn',
      detail: expect.stringMatching(
        /^mosh-client 1\.4\.\d+ here, mosh-server 1\.3\.2 on target: .*no true colour \(24-bit\) and no OSC 52 clipboard/,
      ) as string,
      hint: expect.stringMatching(/^update mosh on target to 1\.4 or later/) as string,
    });
    expect(await settleNoHopProcesses(lab)).toEqual([]);
  });
});

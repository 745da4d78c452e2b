// mosh's own options through moshctl, in the lab: where mosh-server listens
// (mosh.bind_server, as mosh's --bind-server: `-s` by default, so it answers
// on the address the last relay sends to); what mosh-client is run with
// (--predict, --predict-overwrite, --no-init, mosh.client), read from its
// environment and seen on the terminal.
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { Lab } from '../../src/lab/index.js';
import {
  exitSession,
  records,
  sessionProcesses,
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

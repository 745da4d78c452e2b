// moshctl as most people meet it: an ordinary user with only ~/.ssh/config
// (a two-hop ProxyJump) and OpenSSH's default key and known_hosts, no
// moshproxy.yaml anywhere, run from an empty folder. up, status, down,
// doctor, plan and completion all work from ssh_config alone.
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, type Lab } from '../../src/lab/index.js';
import {
  records,
  runWithoutTerminal,
  settleNoHopProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  useSessions,
  waitForExit,
  waitForPrompt,
} from './moshctl.js';
import { e2eSkipReason, useLab } from './support.js';

const reason = e2eSkipReason();

describe.skipIf(reason)('no moshproxy.yaml at all: an ordinary user with only ~/.ssh/config', () => {
  const ctx = useLab({ bastions: 2 });
  const { start } = useSessions(ctx);
  /** An empty folder the user may enter: no moshproxy.yaml in it or above it. */
  let empty = '';
  /** A folder with `moshctl` in it, for PATH. */
  let bin = '';
  let skip: string | undefined;

  beforeAll(() => {
    const { lab } = ctx;
    skip = lab.usersMissing;
    const files = lab.clientUserFiles;
    const user = lab.clientUser;
    if (skip || !files || !user) return;
    empty = mkdtempSync('/tmp/moshctl-e2e-empty-');
    chmodSync(empty, 0o755);
    bin = mkdtempSync('/tmp/moshctl-e2e-bin-');
    chmodSync(bin, 0o755);
    symlinkSync(join(REPO_ROOT, 'bin', 'moshctl.js'), join(bin, 'moshctl'));
    // The lab's own home for the user, seen at its passwd home by everything run as it.
    const ssh = join(files.home, '.ssh');
    mkdirSync(ssh, { recursive: true, mode: 0o700 });
    const put = (name: string, text: string): void => {
      const path = join(ssh, name);
      writeFileSync(path, text, { mode: 0o600 });
      chownSync(path, user.uid, user.gid);
    };
    put('id_ed25519', readFileSync(files.keyFile, 'utf8'));
    put('known_hosts', readFileSync(files.knownHostsFile, 'utf8'));
    put(
      'config',
      [
        'Host devbox',
        `  HostName ${lab.hosts.target.dnsName}`,
        '  ProxyJump hop1,hop2',
        'Host hop1',
        `  HostName ${lab.hosts.bastion.dnsName}`,
        'Host hop2',
        `  HostName ${lab.hosts.bastion2?.dnsName ?? ''}`,
        'Host devbox hop1 hop2',
        '  User root',
        '',
      ].join('\n'),
    );
    chownSync(ssh, user.uid, user.gid);
  });
  afterAll(() => {
    for (const d of [empty, bin]) if (d) rmSync(d, { recursive: true, force: true });
  });

  /** moshctl as the client user, from the empty folder, without a terminal. */
  const asUser = (lab: Lab, args: string[], env: Record<string, string> = {}) =>
    runWithoutTerminal(lab, args, { noConfig: true, cwd: empty, asClientUser: true, env });

  it('plan, completion and validate need no file', async () => {
    const { lab } = ctx;
    if (skip) return void console.warn(`skipped: ${skip}`);
    const plan = await asUser(lab, ['plan', 'devbox']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout.split('\n').slice(0, 2)).toEqual([
      'moshctl up devbox: local → hop1 → hop2 → devbox',
      'ssh client: ssh2 (the built-in client: nothing on the route needs more)',
    ]);
    const hosts = await asUser(lab, ['completion', '__hosts']);
    expect(hosts.stdout.split('\n').filter(Boolean)).toEqual(['devbox', 'hop1', 'hop2']);
    // The script a user puts in ~/.bashrc, completing `moshctl up d<TAB>` in a real bash, with
    // moshctl on PATH as after `npm install -g`.
    const bash = await lab.exec(
      'client',
      lab.asClientUser([
        'bash',
        '-c',
        `PATH="$0:$PATH" && cd ${empty} && eval "$(moshctl completion bash)" && COMP_WORDS=(moshctl up d) COMP_CWORD=2 COMP_LINE='moshctl up d' COMP_POINT=12 && _moshctl && printf '%s\\n' "\${COMPREPLY[@]}"`,
        bin,
      ]),
    );
    expect(bash.stdout.split('\n').filter(Boolean), bash.stderr).toEqual(['devbox']);
    const validate = await asUser(lab, ['validate']);
    expect(validate.code).toBe(0);
    expect(validate.stdout).toContain('none is needed');
  });

  it('doctor checks the route hop by hop and passes', async () => {
    const { lab } = ctx;
    if (skip) return void console.warn(`skipped: ${skip}`);
    const r = await asUser(lab, ['doctor', 'devbox']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('all checks passed');
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
  });

  it('up, status and down: a session through both hops; down from a folder of another config ends it; nothing left', async () => {
    const { lab } = ctx;
    if (skip || !lab.clientUserFiles) return void console.warn(`skipped: ${skip}`);
    const s = await start(['up', 'devbox'], { noConfig: true, cwd: empty, asClientUser: true });
    await waitForPrompt(s, 40_000);
    await typeAndCheck(lab, s);
    const env = { XDG_STATE_HOME: s.stateHome };
    const status = await asUser(lab, ['status', '--json'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({
      sessions: [{ name: 'devbox', route: ['hop1', 'hop2', 'devbox'] }],
    });
    // From anywhere: here from a folder inside the lab dir, whose moshproxy.yaml does not
    // know devbox; NAME's session of no config is found all the same.
    const down = await runWithoutTerminal(lab, ['down', 'devbox'], {
      noConfig: true,
      cwd: lab.clientUserFiles.dir,
      asClientUser: true,
      env,
    });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout, down.stderr).toMatch(/stopped/);
    await waitForExit(s);
    expect(await settleNoSessionProcesses(lab), stderrOf(s)).toEqual([]);
    expect(records(s)).toEqual([]);
    expect(await settleNoHopProcesses(lab), stderrOf(s)).toEqual([]);
  });
});

import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempTree } from './helpers.js';

// The JSON that `moshctl config --json` prints, as far as these tests read it.
type Printed = { defaults: { user: string }; hosts: Record<string, Record<string, unknown>> };
const parse = (text: string): Printed => JSON.parse(text) as Printed;

const team =
  'version: 1\ndefaults:\n  user: team\nhosts:\n  bastion: {address: b.example.com}\n  box: {address: 10.0.0.2, via: [bastion]}\n';

describe('which files make up the config', () => {
  it('walks up from the working directory and merges the override beside the file', async () => {
    const dir = tempTree({
      'moshproxy.yaml': team,
      'moshproxy.override.yaml': 'version: 1\ndefaults:\n  user: alice\n',
      'deep/er/x.txt': '',
    });
    const r = await run(['config', '--json'], { cwd: join(dir, 'deep/er') });
    expect(r.code).toBe(0);
    expect(parse(r.stdout)).toMatchObject({
      defaults: { user: 'alice' },
      hosts: { box: { via: ['bastion'] } },
    });
  });

  it('merges -f files in order, later over earlier, replacing lists whole', async () => {
    const dir = tempTree({
      'a.yaml': team,
      'b.yaml': 'version: 1\nhosts:\n  jump: {address: j}\n  box: {via: [jump], port: 2200}\n',
    });
    const r = await run(['-f', 'a.yaml', 'config', '--json', '--file', 'b.yaml'], { cwd: dir });
    expect(r.code).toBe(0);
    expect(parse(r.stdout).hosts.box).toEqual({ address: '10.0.0.2', via: ['jump'], port: 2200 });
  });

  it('points at the file that set a value when a merged value is wrong', async () => {
    const dir = tempTree({ 'a.yaml': team, 'b.yaml': 'version: 1\nhosts:\n  box:\n    port: none\n' });
    const r = await run(['-f', 'a.yaml', '-f', 'b.yaml', 'validate'], { cwd: dir });
    expect(r.stderr).toBe(
      'moshctl: <dir>/b.yaml:4:11: hosts.box.port must be a whole number, not string "none"\n  hint: an SSH port is a whole number from 1 to 65535\n',
    );
  });

  it('uses MOSHCTL_FILE when no -f is given, without the override', async () => {
    const dir = tempTree({
      'conf/team.yaml': team,
      'conf/moshproxy.override.yaml': 'version: 1\ndefaults:\n  user: ignored\n',
      'moshproxy.yaml': 'not: used\n',
    });
    const r = await run(['config', '--json'], {
      cwd: dir,
      env: { MOSHCTL_FILE: join(dir, 'conf/team.yaml') },
    });
    expect(r.code).toBe(0);
    expect(parse(r.stdout).defaults.user).toBe('team');
  });

  it('needs no file: validate and config say there is none and that none is needed (exit 0)', async () => {
    const dir = tempTree({});
    const none =
      'no moshproxy.yaml found in <dir> or any folder above it, and none is needed: moshctl up NAME works for any NAME that "ssh NAME" reaches';
    const v = await run(['validate'], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout.startsWith(none)).toBe(true);
    expect(v.stderr).toBe('');
    const vj = JSON.parse((await run(['validate', '--json'], { cwd: dir })).stdout) as Record<
      string,
      unknown
    >;
    expect(vj).toMatchObject({ version: 1, ok: true, files: [], problems: [] });
    expect(String(vj.note)).toContain('none is needed');
    for (const args of [['config'], ['config', '--resolved']]) {
      const c = await run(args, { cwd: dir });
      expect(c.code, c.stderr).toBe(0);
      expect(c.stdout.startsWith(`# ${none}`)).toBe(true);
      expect(c.stdout).toContain('"moshctl config --resolved NAME" shows a host as up sees it');
    }
    const cj = JSON.parse((await run(['config', '--json'], { cwd: dir })).stdout) as Record<string, unknown>;
    expect(cj.files).toEqual([]);
  });

  it('config --resolved NAME and plan NAME work from ssh_config alone, saying which ssh client and why', async () => {
    const dir = tempTree({
      ssh_config: [
        'Host devbox',
        '  HostName 10.0.3.12',
        '  ProxyJump bastion',
        'Host bastion',
        '  HostName 192.0.2.1',
        '  ProxyCommand cloudflared access ssh --hostname %h',
        '',
      ].join('\n'),
    });
    const env = {
      USER: 'tester',
      HOME: dir,
      PATH: process.env.PATH,
      MOSHCTL_SSH_CONFIG: join(dir, 'ssh_config'),
    };
    const r = await run(['config', '--resolved', 'devbox'], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('ssh_config, default, or chosen (by moshctl, with why)');
    expect(r.stdout).toContain('  devbox:\n');
    expect(r.stdout).toContain('    chain: ["bastion"]  # ssh_config');
    expect(r.stdout).toContain(
      '    ssh_client: "openssh"  # chosen: bastion needs a ProxyCommand (cloudflared access ssh --hostname %h), which the built-in ssh2 cannot do',
    );
    const p = await run(['plan', 'devbox'], { cwd: dir, env });
    expect(p.code, p.stderr).toBe(0);
    // 192.0.2.1 is an address: UDP is tried first (auto), tcp when no reply comes.
    expect(p.stdout.split('\n').slice(0, 3)).toEqual([
      'moshctl up devbox: local → bastion → devbox',
      'ssh client: openssh (chosen by itself: bastion needs a ProxyCommand (cloudflared access ssh --hostname %h), which the built-in ssh2 cannot do)',
      'transport: auto (chosen by itself: bastion is reached through a ProxyCommand, but its address 192.0.2.1 resolves here, so UDP is tried first)',
    ]);
  });

  it.each([
    [
      'only defaults and mosh settings',
      'version: 1\ndefaults:\n  user: alice\nmosh:\n  locale: en_US.UTF-8\n',
    ],
    ['an empty hosts map', 'version: 1\nhosts: {}\n'],
    ['a hosts key with every entry commented out', 'version: 1\nhosts:\n#  box: {address: 10.0.0.2}\n'],
  ])('a file with %s is valid', async (_what, text) => {
    const dir = tempTree({ 'moshproxy.yaml': text });
    expect(await run(['validate'], { cwd: dir })).toEqual({ code: 0, stdout: 'ok\n', stderr: '' });
  });

  it('names a missing -f file and a missing MOSHCTL_FILE file', async () => {
    const dir = tempTree({});
    expect((await run(['-f', 'nope.yaml', 'validate'], { cwd: dir })).stderr).toBe(
      'moshctl: config file not found: <dir>/nope.yaml (given with -f)\n  hint: check the path\n',
    );
    const env = { MOSHCTL_FILE: join(dir, 'gone.yaml') };
    expect((await run(['validate'], { cwd: dir, env })).stderr).toContain(
      '<dir>/gone.yaml (named by MOSHCTL_FILE)',
    );
  });

  it('resolves relative paths against the file that wrote them, and ~ against HOME', async () => {
    const dir = tempTree({
      'team/moshproxy.yaml':
        'version: 1\ndefaults:\n  identity_file: keys/id\n  known_hosts: ~/kh\nhosts:\n  a: {address: x}\n',
      'team/sub/.keep': '',
    });
    const r = await run(['config', '--resolved', '--json'], {
      cwd: join(dir, 'team/sub'),
      env: { HOME: '/home/h' },
    });
    const a = parse(r.stdout).hosts.a;
    expect(a?.identity_files).toEqual([join(dir, 'team/keys/id')]);
    expect(a?.known_hosts).toEqual(['/home/h/kh']);
  });
});

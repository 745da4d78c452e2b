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

  it('says where it looked when no file is found', async () => {
    const dir = tempTree({});
    const r = await run(['validate'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^moshctl: no moshproxy\.yaml found in <dir> or any folder above it \(looked at <dir>\/moshproxy\.yaml, /,
    );
    expect(r.stderr).toContain('hint: create one (see examples/), pass -f FILE, or set MOSHCTL_FILE');
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

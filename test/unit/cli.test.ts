import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mainHelp } from '../../src/cli/help.js';
import { main } from '../../src/cli/main.js';
import { commands } from '../../src/cli/spec.js';
import { ExitCode } from '../../src/errors.js';
import { run, tempTree } from './helpers.js';

const good =
  'version: 1\nhosts:\n  bastion: {address: b.example.com}\n  box: {address: 10.0.0.2, via: [bastion]}\n';
const names = commands.map((c) => c.name);
const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as {
  version: string;
};

describe('moshctl command line', () => {
  it('validate prints nothing but ok and exits 0', async () => {
    expect(await run(['validate'], { cwd: tempTree({ 'moshproxy.yaml': good }) })).toEqual({
      code: 0,
      stdout: 'ok\n',
      stderr: '',
    });
  });

  it('validate --json gives ok with the files read, or every problem with file and line (exit 2), with a version', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': good });
    const ok = await run(['validate', '--json'], { cwd });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({
      version: 1,
      ok: true,
      files: ['<dir>/moshproxy.yaml'], // run() writes the temp folder as <dir>
      problems: [],
    });
    const bad = await run(['validate', '--json'], {
      cwd: tempTree({ 'moshproxy.yaml': 'version: 1\nhosts:\n  box: {adress: x}\n' }),
    });
    expect(bad.code).toBe(ExitCode.usage);
    const data = JSON.parse(bad.stdout) as { version: number; ok: boolean; problems: { line?: number }[] };
    expect(data).toMatchObject({ version: 1, ok: false });
    expect(data.problems.length).toBeGreaterThan(0);
    expect(data.problems[0]?.line).toBe(3);
    expect(bad.stderr).toBe('');
  });

  it('up --json without --no-connect is refused: it would print no data', async () => {
    const r = await run(['up', 'box', '--json'], { cwd: tempTree({ 'moshproxy.yaml': good }) });
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain('--json goes with --no-connect');
  });

  it.each(names)('%s --help shows usage and the exit codes', async (name) => {
    const r = await run([name, '--help'], { cwd: tempTree({}) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: moshctl ${name}`));
    expect(r.stdout).toContain('--file FILE');
    expect(r.stdout).toContain('2    the config file or the command line is wrong');
  });

  it.each(names)('%s --version prints the package version', async (name) => {
    expect(await run([name, '--version'], { cwd: tempTree({}) })).toEqual({
      code: 0,
      stdout: `moshctl ${pkg.version}\n`,
      stderr: '',
    });
  });

  it('--help lists every command', async () => {
    const r = await run(['--help'], { cwd: tempTree({}) });
    for (const name of names) expect(r.stdout).toMatch(new RegExp(`^ {2}${name} +\\S`, 'm'));
  });

  it.each([
    [['deploy'], 'unknown command "deploy"'],
    [['stauts'], 'did you mean "status"?'],
    [['validate', '--jsn'], "Unknown option '--jsn'"],
    [['plan'], 'missing argument: moshctl plan NAME'],
    [['plan', 'a', 'b'], 'unexpected argument "b"'],
    [['validate', '--', 'x'], '"validate" takes no "-- COMMAND"'],
    [
      ['plan', 'box', '--bind-server', 'box.example.org'],
      '--bind-server "box.example.org" is neither ssh, any nor an IP address',
    ],
    [['plan', 'box', '--predict', 'sometimes'], '--predict "sometimes" is not a prediction mode'],
    [
      ['plan', 'box', '--server', '/usr/bin/mosh-server;id'],
      '--server "/usr/bin/mosh-server;id" is not a path moshctl can pass to a shell',
    ],
    [['plan', 'box', '--server', '/usr/bin/moshd'], '--server "/usr/bin/moshd" does not name a mosh-server'],
    [['plan', 'box', '--client=-x'], '--client "-x" starts with "-"'],
    [['plan', 'box', '-L', '8080:localhost'], '-L "8080:localhost" is not a local forward: ssh takes'],
    [['plan', 'box', '--remote-forward', '9093'], '-R "9093" is ssh\'s reverse SOCKS proxy'],
    [['plan', 'box', '-D', '1080', '-D', '/tmp/s'], '-D "/tmp/s" is not a dynamic forward'],
    [
      ['plan', 'box', '--no-connect', '-A'],
      '--no-connect cannot take -A: forwards and the agent live in the moshctl up process',
    ],
    [
      ['plan', 'box', '--no-connect', '-L', '8080:localhost:80'],
      '--no-connect cannot take -L 8080:localhost:80',
    ],
    [['-f'], "Option '-f, --file <value>' argument missing"],
    [[], 'no command given'],
  ])('%j exits 2 with a message', async (argv, message) => {
    const r = await run(argv, { cwd: tempTree({ 'moshproxy.yaml': good }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('plan prints the plan, and --json the same as data', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': good });
    const text = await run(['plan', 'box'], { cwd });
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe('moshctl up box: local → bastion → box');
    const json = await run(['plan', 'box', '--json', '--', 'tmux', 'attach'], { cwd });
    const plan = JSON.parse(json.stdout) as {
      version: number;
      steps: { kind: string; command?: string[] }[];
    };
    expect(plan.version).toBe(9);
    expect(plan.steps.map((s) => s.kind)).toEqual([
      'connect',
      'connect',
      'server',
      'relay',
      'wire',
      'client',
    ]);
    expect(plan.steps[2]?.command).toEqual(['tmux', 'attach']);
  });

  it('plan takes -L, -R, -D (repeated, short or long) and -A, and gives them with their notes in --json', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': good });
    const argv = [
      'plan',
      'box',
      '-L',
      '8080:localhost:80',
      '--local-forward=0.0.0.0:8081:db:5432',
      '-R',
      '0:localhost:3000',
      '-D',
      '1080',
      '-A',
    ];
    const text = await run(argv, { cwd });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      'note: -L 0.0.0.0:8081:db:5432 (command line) listens on every IPv4 interface of this machine',
    );
    expect(text.stdout).toMatch(
      /^ {2}6\. port-forward box {6}listens on this machine \(loopback, port 8080\)/m,
    );
    const plan = JSON.parse((await run([...argv, '--json'], { cwd })).stdout) as {
      steps: { kind: string; spec?: { text: string; source: string }; required?: boolean; socket?: string }[];
      notes: string[];
    };
    expect(plan.steps.flatMap((s) => (s.spec ? [[s.spec.text, s.spec.source, s.required]] : []))).toEqual([
      ['-L 8080:localhost:80', 'command line', false],
      ['-L 0.0.0.0:8081:db:5432', 'command line', false],
      ['-R 0:localhost:3000', 'command line', false],
      ['-D 1080', 'command line', false],
    ]);
    expect(plan.steps.find((s) => s.kind === 'agent')?.socket).toBe('~/.moshctl/agent/box.sock');
    expect(plan.notes).toHaveLength(1);
  });

  it('up names a bad forward before anything else is read (exit 2)', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': good });
    const r = await run(['up', 'box', '-L', '8080:local host:80'], { cwd, tty: true });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'moshctl: -L "8080:local host:80" has "local host", which is neither a host name nor an IP address (letters, digits, ".", "_" and "-"; an IPv6 address in brackets)\n  hint: e.g. 8080:localhost:80 (port 8080 here, to localhost:80 as the target reaches it)\n',
    );
  });

  it('up refuses without a terminal on stdin, before reading hosts, and points at --no-connect', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': 'version: 1\nhosts:\n  box: {address: 192.0.2.5}\n' });
    const r = await run(['up', 'box'], { cwd, tty: false });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'moshctl: moshctl up needs a terminal on stdin for mosh-client, and this one has none\n  hint: run it in a terminal, or use "moshctl up box --no-connect" to start the session and print what a mosh client elsewhere needs\n',
    );
  });

  it('up with ssh_client: openssh and no ssh installed: exit 1 before connecting, naming the host that asked', async () => {
    const cwd = tempTree({
      'moshproxy.yaml':
        'version: 1\nhosts:\n  jump: {address: 192.0.2.1, ssh_client: openssh}\n  box: {address: 192.0.2.5, via: [jump]}\n',
      'bin/mosh-client': '#!/bin/sh\n',
    });
    chmodSync(join(cwd, 'bin/mosh-client'), 0o755);
    const r = await run(['up', 'box'], {
      cwd,
      tty: true,
      env: { USER: 'tester', HOME: '/home/tester', PATH: join(cwd, 'bin') },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      'ssh_client: openssh (asked for by jump) needs the OpenSSH client, and ssh is not installed',
    );
    expect(r.stderr).toContain('apt install openssh-client');
  });

  it('plan names an unknown host and exits 2', async () => {
    const r = await run(['plan', 'boxx'], { cwd: tempTree({ 'moshproxy.yaml': good }) });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'moshctl: unknown host "boxx": not in <dir>/moshproxy.yaml (ssh is not installed, so ssh_config was not consulted)\n  hint: did you mean "box"?\n',
    );
  });

  it('config prints the merged, interpolated YAML', async () => {
    const cwd = tempTree({
      'moshproxy.yaml': 'version: 1\ndefaults:\n  user: ${WHO:-nobody}\nhosts:\n  a: {address: x}\n',
    });
    expect((await run(['config'], { cwd, env: { WHO: 'carol' } })).stdout).toBe(
      'version: 1\ndefaults:\n  user: carol\nhosts:\n  a:\n    address: x\n',
    );
  });
});

// `moshctl validate` must start fast: ssh2, listr2 and execa load only in the
// commands that use them. Follows static imports from each light command.
describe('cold start', () => {
  const heavy = ['ssh2', 'listr2', 'execa'];
  const staticImports = (file: string): string[] =>
    [...readFileSync(file, 'utf8').matchAll(/^import\s[^;]*?from\s+'([^']+)'/gm)]
      .filter((m) => !/^import\s+type\s/.test(m[0]))
      .map((m) => m[1] ?? '');

  it.each(['validate', 'config', 'plan'])('%s reaches no heavy package through static imports', (name) => {
    const seen = new Set<string>();
    const reached: string[] = [];
    const visit = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of staticImports(file)) {
        if (spec.startsWith('.')) visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        else reached.push(spec);
      }
    };
    const root = resolve(import.meta.dirname, '../../src/cli');
    visit(join(root, 'main.ts'));
    visit(join(root, `commands/${name}.ts`));
    expect(reached.filter((p) => heavy.some((h) => p === h || p.startsWith(`${h}/`)))).toEqual([]);
    expect(seen.size).toBeGreaterThan(5);
  });
});

describe('down and status without sessions', () => {
  it('status says there are none, and down --all has nothing to stop', async () => {
    const cwd = tempTree({});
    const env = { HOME: cwd, XDG_STATE_HOME: join(cwd, 'state') };
    expect(await run(['status'], { cwd, env })).toEqual({ code: 0, stdout: 'no sessions\n', stderr: '' });
    expect(await run(['status', '--json'], { cwd, env })).toEqual({
      code: 0,
      stdout: '{\n  "version": 1,\n  "sessions": []\n}\n',
      stderr: '',
    });
    expect(await run(['down', '--all'], { cwd, env })).toEqual({
      code: 0,
      stdout: 'no sessions to stop\n',
      stderr: '',
    });
  });

  it('down works outside any config: NAME from anywhere, nothing to stop here', async () => {
    const cwd = tempTree({});
    const env = { HOME: cwd, XDG_STATE_HOME: join(cwd, 'state') };
    expect(await run(['down'], { cwd, env })).toEqual({
      code: 0,
      stdout: 'no sessions to stop\n',
      stderr: '',
    });
    expect(await run(['down', 'devbox'], { cwd, env })).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('--debug and unexpected errors', () => {
  const bad = 'version: 1\nhosts:\n  box: {adress: x}\n';
  const stackLine = /^ {4}at /m;

  it('a failing command shows its stack with --debug or MOSHCTL_DEBUG=1, and none without', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': bad });
    const plain = await run(['validate'], { cwd });
    expect(plain.code).toBe(2);
    expect(plain.stderr).not.toMatch(stackLine);
    expect(plain.stderr).not.toContain('debug');
    for (const r of [
      await run(['validate', '--debug'], { cwd }),
      await run(['--debug', 'validate'], { cwd }),
      await run(['validate'], { cwd, env: { USER: 'tester', HOME: '/home/tester', MOSHCTL_DEBUG: '1' } }),
    ]) {
      expect(r.code).toBe(2);
      expect(r.stderr.startsWith(plain.stderr)).toBe(true);
      expect(r.stderr.slice(plain.stderr.length)).toMatch(/^moshctl: debug: UserError\n {4}at loadConfig /);
      expect(r.stderr).toMatch(stackLine);
    }
  });

  it('--debug also shows the stack of an error in the command line itself', async () => {
    const r = await run(['validate', '--jsn', '--debug'], { cwd: tempTree({}) });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--jsn'");
    expect(r.stderr).toMatch(stackLine);
  });

  it('an error that is none of ours is a bug: a short message, exit 70, the stack only with --debug', async () => {
    const cwd = tempTree({ 'moshproxy.yaml': good });
    const broken = async (argv: string[]) => {
      let stderr = '';
      const code = await main(argv, {
        stdout: () => {
          throw new TypeError("Cannot read properties of undefined (reading 'x')");
        },
        stderr: (t) => (stderr += t),
        env: { USER: 'tester', HOME: '/home/tester' },
        cwd,
        stdinIsTTY: false,
      });
      return { code, stderr };
    };
    const plain = await broken(['validate']);
    expect(plain).toEqual({
      code: 70,
      stderr: [
        "moshctl: unexpected error: Cannot read properties of undefined (reading 'x')",
        '  this is a bug in moshctl; please report it at https://github.com/moshctl/moshctl/issues with the command you ran',
        '  run the command again with --debug to see where it happened, and add that to the report',
        '',
      ].join('\n'),
    });
    const debug = await broken(['validate', '--debug']);
    expect(debug.code).toBe(70);
    expect(debug.stderr).not.toContain('run the command again with --debug');
    expect(debug.stderr).toMatch(/^moshctl: debug: TypeError\n {4}at /m);
    expect(debug.stderr).toMatch(/^ {4}at run .*commands\/validate\.ts/m);
  });

  it('the exit codes in --help match ExitCode and docs/commands.md', () => {
    const reference = readFileSync(resolve(import.meta.dirname, '../../docs/commands.md'), 'utf8');
    expect(reference).toContain(`| ${ExitCode.internal} | a bug in moshctl`);
    expect(mainHelp()).toContain(`${ExitCode.internal}   a bug in moshctl`);
    expect(mainHelp()).toContain('--debug');
  });
});

// "If ssh gets you in, moshctl up gets you in": host names as addresses,
// hosts only ssh_config knows (ProxyJump chains), OpenSSH's default keys and
// known_hosts, host and user certificates through the openssh client, chosen
// by itself (and their refusal when ssh2 is named), one-time codes by
// keyboard-interactive, ordinary users with bash, dash, zsh and fish, no
// terminal, and --no-connect.
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, Tmux, type Lab } from '../../src/lab/index.js';
import {
  cmdline,
  exitSession,
  sessionProcesses,
  settleNoSessionProcesses,
  stderrOf,
  typeAndCheck,
  waitForPrompt,
  useSessions,
} from './moshctl.js';
import { e2eSkipReason, useLab } from './support.js';

const reason = e2eSkipReason();

/** Session records under a state home. */
function sessionFiles(stateHome: string): string[] {
  const dir = join(stateHome, 'moshctl', 'sessions');
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => join(dir, f))
    : [];
}

function writeConfig(lab: Lab, name: string, text: string): string {
  const file = join(lab.dir, name);
  writeFileSync(file, text, { mode: 0o644 });
  return file;
}

/** The lab's config with one more line under `defaults:`. */
function withDefault(text: string, line: string): string {
  return text.replace(/^defaults:\n/m, `defaults:\n  ${line}\n`);
}

/** The address and port mosh-client was started with, read from its argv in the client namespace. */
async function moshClientArgs(lab: Lab): Promise<string[]> {
  for (const pid of await lab.pidsIn('client')) {
    const argv = cmdline(pid).split(' ');
    const i = argv.findIndex((a) => a.endsWith('mosh-client'));
    if (i >= 0) return argv.slice(i + 1);
  }
  return [];
}

/** moshctl to completion without a terminal (stdin is a pipe), as the client. */
function moshctl(lab: Lab, args: string[], env: Record<string, string> = {}) {
  return lab.exec(
    'client',
    [
      'env',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      process.execPath,
      join(REPO_ROOT, 'bin', 'moshctl.js'),
      ...args,
    ],
    { timeoutMs: 60_000 },
  );
}

describe.skipIf(reason).each([1, 2] as const)('host names as addresses, %i bastion(s)', (bastions) => {
  const ctx = useLab({ bastions });
  const { start } = useSessions(ctx);

  it('connects by name and gives mosh-client the numeric address the first connection reached', async () => {
    const { lab } = ctx;
    const config = writeConfig(lab, 'names.yaml', lab.configText({ names: true }));
    expect(readFileSync(config, 'utf8')).toContain('address: bastion.lab.test');
    const s = await start(['up', 'target'], { config });
    await waitForPrompt(s);
    await typeAndCheck(lab, s);
    const [address] = await moshClientArgs(lab);
    expect(address).toBe(lab.hosts.bastion.sshAddress);
    expect(await exitSession(s)).toBe(0);
  });
});

describe.skipIf(reason)('a host only ssh_config knows', () => {
  const ctx = useLab({ bastions: 2 });
  const { start } = useSessions(ctx);

  function sshConfig(lab: Lab): string {
    return writeConfig(
      lab,
      'ssh_config_hosts',
      [
        // A two-hop list, as with ssh -J hop1,hop2.
        'Host devbox',
        '  HostName target.lab.test',
        '  ProxyJump hop1,hop2',
        // One jump, reached through its own ProxyJump (user@host:port form), as ssh does.
        'Host devbox2',
        '  HostName target.lab.test',
        '  ProxyJump hop2',
        'Host hop1',
        '  HostName bastion.lab.test',
        'Host hop2',
        '  HostName bastion2.lab.test',
        '  ProxyJump root@bastion.lab.test:22',
        'Host *',
        '  User root',
        `  IdentityFile ${lab.keyFile}`,
        `  UserKnownHostsFile ${lab.knownHostsFile}`,
        '',
      ].join('\n'),
    );
  }

  it('plans and opens a session through its two-hop ProxyJump chain, each hop resolved by ssh -G', async () => {
    const { lab } = ctx;
    const env = { MOSHCTL_SSH_CONFIG: sshConfig(lab) };
    const listed = await moshctl(lab, ['-f', lab.configFile, 'plan', 'devbox'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.split('\n')[0]).toBe('moshctl up devbox: local → hop1 → hop2 → devbox');
    expect(listed.stdout).toContain('ssh root@target.lab.test:22, tunnelled through hop2');
    const nested = await moshctl(lab, ['-f', lab.configFile, 'plan', 'devbox2'], env);
    expect(nested.stdout.split('\n')[0]).toBe(
      'moshctl up devbox2: local → root@bastion.lab.test:22 → hop2 → devbox2',
    );
    const s = await start(['up', 'devbox'], { env });
    await waitForPrompt(s);
    await typeAndCheck(lab, s);
    expect(await exitSession(s)).toBe(0);
  });

  it('fills what moshproxy.yaml leaves unset from ssh_config, and config --resolved says where each value came from', async () => {
    const { lab } = ctx;
    const sshCfg = writeConfig(
      lab,
      'ssh_config_users',
      [
        'Host bastion.lab.test',
        '  User mctl-bash',
        `  IdentityFile ${lab.keyFile}`,
        `  UserKnownHostsFile ${lab.knownHostsFile}`,
        '',
      ].join('\n'),
    );
    const config = writeConfig(
      lab,
      'team.yaml',
      'version: 1\nhosts:\n  bastion:\n    address: bastion.lab.test\n',
    );
    const r = await moshctl(lab, ['-f', config, 'config', '--resolved'], { MOSHCTL_SSH_CONFIG: sshCfg });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('user: "mctl-bash"  # ssh_config');
    expect(r.stdout).toContain(`identity_files: ["${lab.keyFile}"]  # ssh_config`);
    expect(r.stdout).toMatch(/address: "bastion\.lab\.test" {2}# .*team\.yaml:4/);
    expect(r.stdout).toContain('host_key_policy: "strict"  # default');
  });

  it('names an unknown host and both places it looked, exit 2, nothing started', async () => {
    const { lab } = ctx;
    const r = await moshctl(lab, ['-f', lab.configFile, 'up', 'nosuch-host', '--no-connect'], {
      MOSHCTL_SSH_CONFIG: sshConfig(lab),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown host "nosuch-host": not in');
    expect(r.stderr).toContain('ssh_config_hosts');
    expect(await sessionProcesses(lab)).toEqual([]);
  });
});

describe.skipIf(reason)('certificates', () => {
  const ctx = useLab({ bastions: 1 });
  const { start } = useSessions(ctx);

  /** The lab's config with another key or known_hosts; `client` named under defaults:, or none. */
  const config = (lab: Lab, client: 'ssh2' | 'none', over: { key?: string; knownHosts?: string }): string => {
    const text = lab.configText({
      keyFile: over.key ?? lab.keyFile,
      knownHostsFile: over.knownHosts ?? lab.knownHostsFile,
    });
    return writeConfig(
      lab,
      `certs-${client}-${over.key ? 'user' : 'host'}.yaml`,
      client === 'none' ? text : withDefault(text, `ssh_client: ${client}`),
    );
  };

  it.each([
    ['trusts hosts through a host CA (@cert-authority)', { knownHosts: 'ca' }, 'a host certificate'],
    ['logs in with a user certificate', { key: 'cert' }, 'an OpenSSH user certificate'],
  ] as const)(
    '%s with no ssh_client named: openssh is chosen, and plan says why',
    async (_what, which, text) => {
      const { lab } = ctx;
      const file = config(lab, 'none', {
        ...('knownHosts' in which ? { knownHosts: lab.caKnownHostsFile } : {}),
        ...('key' in which ? { key: lab.certOnlyKeyFile } : {}),
      });
      expect(readFileSync(file, 'utf8')).not.toContain('ssh_client');
      const plan = await moshctl(lab, ['-f', file, 'plan', 'target']);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout.split('\n')[1]).toMatch(
        new RegExp(`^ssh client: openssh \\(chosen by itself: bastion needs ${text}\\b`),
      );
      const s = await start(['up', 'target'], { config: file });
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      expect(await exitSession(s)).toBe(0);
    },
  );

  it.each([
    ['a host known only through @cert-authority', 'ca', 'a host certificate'],
    ['a user certificate', 'cert', 'an OpenSSH user certificate'],
  ] as const)(
    'refuses %s when ssh_client: ssh2 is named, before connecting, pointing at openssh',
    async (_what, over, text) => {
      const { lab } = ctx;
      const file = config(
        lab,
        'ssh2',
        over === 'ca' ? { knownHosts: lab.caKnownHostsFile } : { key: lab.certOnlyKeyFile },
      );
      const r = await moshctl(lab, ['-f', file, 'up', 'target', '--no-connect']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`bastion needs ${text}`);
      expect(r.stderr).toContain('ssh_client: openssh');
      expect(await sessionProcesses(lab)).toEqual([]);
    },
  );
});

describe.skipIf(reason).each(['ssh2', 'openssh'])(
  'keyboard-interactive one-time code on the bastion (%s)',
  (client) => {
    const ctx = useLab({ bastions: 1, kbdInteractive: ['bastion'] });
    const { start } = useSessions(ctx);

    it('asks on the terminal before the task list, hides what is typed, and the session works', async () => {
      const { lab } = ctx;
      const config = writeConfig(
        lab,
        `otp-${client}.yaml`,
        withDefault(lab.configText(), `ssh_client: ${client}`),
      );
      const s = await start(['up', 'target'], { config });
      await s.tmux.waitFor(/Password: ?$/m, 20_000);
      await s.tmux.sendKeys(lab.otpCode);
      await s.tmux.sendEnter();
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      expect(await s.tmux.capture()).not.toContain(lab.otpCode);
      expect(stderrOf(s)).not.toContain(lab.otpCode);
      expect(await exitSession(s)).toBe(0);
    });
  },
);

describe.skipIf(reason)('no terminal, and --no-connect', () => {
  const ctx = useLab({ bastions: 1 });
  // A --no-connect session outlives its moshctl: a failed test still ends it by its record.
  useSessions(ctx, async () => {
    await moshctl(ctx.lab, ['-f', ctx.lab.configFile, 'down', '--all'], {
      XDG_STATE_HOME: join(ctx.lab.dir, 'state-nc'),
    });
  });

  it('refuses up without a terminal at once, pointing at --no-connect, and starts nothing', async () => {
    const { lab } = ctx;
    const t0 = Date.now();
    const r = await moshctl(lab, ['-f', lab.configFile, 'up', 'target']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('needs a terminal');
    expect(r.stderr).toContain('moshctl up target --no-connect');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await sessionProcesses(lab)).toEqual([]);
  });

  it('--no-connect starts server and relay, prints what a client elsewhere needs; that line alone gives a session; down ends it', async () => {
    const { lab } = ctx;
    const env = { XDG_STATE_HOME: join(lab.dir, 'state-nc') };
    const r = await moshctl(lab, ['-f', lab.configFile, 'up', 'target', '--no-connect'], env);
    expect(r.code, r.stderr).toBe(0);
    const line = /^MOSH_KEY=([A-Za-z0-9/+]{22}) mosh-client (\S+) (\d+)$/m.exec(r.stdout);
    expect(line, r.stdout).not.toBeNull();
    const [, key = '', address = '', port = ''] = line ?? [];
    expect(address).toBe(lab.hosts.bastion.sshAddress);
    expect(r.stdout).toContain(`port ${port}`);
    expect(r.stderr).not.toContain(key);
    expect(r.stderr).toMatch(/left running for a client elsewhere/);
    expect(r.stderr).not.toMatch(/ended; stopped/);
    // The record is there, without the key.
    const recs = sessionFiles(env.XDG_STATE_HOME);
    expect(recs).toHaveLength(1);
    expect(readFileSync(recs[0] ?? '', 'utf8')).not.toContain(key);
    const status = await moshctl(lab, ['-f', lab.configFile, 'status', '--json'], env);
    expect(JSON.parse(status.stdout)).toMatchObject({ sessions: [{ name: 'target', client: 'elsewhere' }] });
    // A client that has only the printed line.
    const tmux = await Tmux.start(lab, {
      name: 'elsewhere',
      command: ['mosh-client', address, port],
      env: { MOSH_KEY: key },
    });
    try {
      const fake = { tmux, stateHome: env.XDG_STATE_HOME, errFile: join(lab.dir, 'none'), env };
      await waitForPrompt(fake);
      await typeAndCheck(lab, fake);
      const down = await moshctl(lab, ['-f', lab.configFile, 'down', 'target'], env);
      expect(down.code, down.stderr).toBe(0);
      // Hosts stop concurrently: either may be named first.
      expect(down.stdout).toMatch(/: stopped .*relay on bastion \(pid \d+, UDP \d+\) \(stopped\)/);
      expect(down.stdout).toMatch(/mosh-server on target \(pid \d+, UDP \d+\) \(stopped\)/);
    } finally {
      await tmux.kill();
    }
    expect(sessionFiles(env.XDG_STATE_HOME)).toEqual([]);
  });

  it('--no-connect --json hands over the same as data, with a version; the key only there', async () => {
    const { lab } = ctx;
    const env = { XDG_STATE_HOME: join(lab.dir, 'state-nc-json') };
    const r = await moshctl(lab, ['-f', lab.configFile, 'up', 'target', '--no-connect', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    const data = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(data).toMatchObject({
      version: 1,
      name: 'target',
      host: 'bastion',
      address: lab.hosts.bastion.sshAddress,
      port: expect.any(Number) as number,
      key: expect.stringMatching(/^[A-Za-z0-9/+]{22}$/) as string,
      session: expect.stringMatching(/^target-/) as string,
    });
    expect(r.stderr).not.toContain(String(data.key));
    const down = await moshctl(lab, ['-f', lab.configFile, 'down', 'target'], env);
    expect(down.code, down.stderr).toBe(0);
    expect(sessionFiles(env.XDG_STATE_HOME)).toEqual([]);
    expect(await settleNoSessionProcesses(lab)).toEqual([]);
  });
});

describe.skipIf(reason)('as an ordinary user, logging in as users with bash, dash, zsh and fish', () => {
  const ctx = useLab({ bastions: 1 });
  const { start } = useSessions(ctx);
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });

  /** A fresh folder any test user may write to: a typed command leaves its proof there. */
  function writableDir(): string {
    const dir = mkdtempSync('/tmp/moshctl-e2e-users-');
    chmodSync(dir, 0o1777);
    made.push(dir);
    return dir;
  }

  it.each(
    ['mctl-bash', 'mctl-dash', 'mctl-zsh', 'mctl-fish'].flatMap((u): [string, string][] => [
      [u, 'ssh2'],
      // The openssh client runs the same remote commands; two shells unlike bash suffice for it.
      ...(u === 'mctl-fish' || u === 'mctl-dash' ? [[u, 'openssh'] as [string, string]] : []),
    ]),
  )(
    'logs in as %s (%s): server and relay start under that login shell, and typing reaches the target',
    async (user, client) => {
      const { lab } = ctx;
      if (lab.usersMissing) return void console.warn(`skipped: ${lab.usersMissing}`);
      const files = lab.clientUserFiles;
      if (!files) throw new Error('no client user files');
      const text = withDefault(
        lab.configText({ keyFile: files.keyFile, knownHostsFile: files.knownHostsFile, user }),
        `ssh_client: ${client}`,
      );
      const config = lab.writeClientUserFile(`users-${user}-${client}.yaml`, text);
      const s = await start(['up', 'target'], { config, asClientUser: true });
      const dir = writableDir();
      await typeAndCheck(lab, s, 30_000, 'target', dir);
      // The proof was written by the remote user, so the session runs as that user.
      const owner = await lab.exec('target', ['sh', '-c', `stat -c %U ${dir}/typed-*`]);
      expect(owner.stdout.trim()).toBe(user);
      expect(await exitSession(s)).toBe(0);
    },
  );

  it("uses OpenSSH's defaults where nothing names them: ~/.ssh/id_ed25519 and ~/.ssh/known_hosts of the user's passwd home", async () => {
    const { lab } = ctx;
    if (lab.usersMissing || !lab.clientUser || !lab.clientUserFiles)
      return void console.warn(`skipped: ${lab.usersMissing}`);
    // This lab's home for the user: whatever it runs as that user sees it at its passwd home.
    const home = lab.clientUserFiles.home;
    const ssh = join(home, '.ssh');
    const made: string[] = [];
    mkdirSync(ssh, { recursive: true, mode: 0o700 });
    try {
      for (const [from, to] of [
        [lab.clientUserFiles.keyFile, 'id_ed25519'],
        [lab.clientUserFiles.knownHostsFile, 'known_hosts'],
      ] as const) {
        const path = join(ssh, to);
        writeFileSync(path, readFileSync(from), { mode: 0o600 });
        made.push(path);
      }
      execFileSync('chown', ['-R', `${lab.clientUser.uid}:${lab.clientUser.gid}`, ssh]);
      const text =
        'version: 1\ndefaults:\n  user: root\nhosts:\n  bastion: {address: bastion.lab.test}\n  target: {address: target.lab.test, via: [bastion]}\n';
      const config = lab.writeClientUserFile('defaults.yaml', text);
      const s = await start(['up', 'target'], { config, asClientUser: true });
      await waitForPrompt(s);
      await typeAndCheck(lab, s);
      expect(await exitSession(s)).toBe(0);
    } finally {
      for (const f of made) rmSync(f, { force: true });
    }
  });
});

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import {
  moshServerBindFallback,
  moshServerCommand,
  moshServerFailure,
  moshServerKeptCommand,
  parseMoshServerOutput,
  parseKeeper,
  parseServerBound,
  parseServerExit,
  parseServerFound,
  parseServerStarted,
  stopKeeperCommand,
  KEPT,
} from '../../src/remote/mosh-server.js';
import { aliveCommand, parseAlive, parseStop, stopByPidCommand } from '../../src/remote/processes.js';
import { parseRelayStop, stopRelayCommand } from '../../src/relay/commands.js';

const step = {
  ports: { from: 60000, to: 61000 },
  networkTimeout: 86400,
  signalTimeout: 60,
  locale: 'C.UTF-8',
  bind: { mode: 'any', why: 'test' },
  program: 'mosh-server',
} as const;

describe('mosh-server command', () => {
  it('puts the timeouts inline through env and quotes the command', () => {
    expect(moshServerCommand(step)).toBe(
      "env 'MOSH_SERVER_NETWORK_TMOUT=86400' 'MOSH_SERVER_SIGNAL_TMOUT=60' mosh-server new -p 60000:61000 -l 'LANG=C.UTF-8'",
    );
    expect(moshServerCommand({ ...step, command: ['sh', '-c', "echo 'hi'; $(id)"] })).toBe(
      `env 'MOSH_SERVER_NETWORK_TMOUT=86400' 'MOSH_SERVER_SIGNAL_TMOUT=60' mosh-server new -p 60000:61000 -l 'LANG=C.UTF-8' -- sh -c 'echo '\\''hi'\\''; $(id)'`,
    );
  });

  it("passes mosh's --bind-server as mosh-server's -s or -i, and refuses what is no address", () => {
    const bound = (bind: Parameters<typeof moshServerCommand>[0]['bind']) =>
      moshServerCommand({ ...step, bind })
        .replace(/^.* mosh-server new /, '')
        .replace(/ -p .*$/, '');
    expect(bound({ mode: 'ssh', why: '' })).toBe('-s');
    expect(bound({ mode: 'address', address: '2001:db8::10', why: '' })).toBe('-i 2001:db8::10');
    expect(moshServerCommand(step)).toContain('mosh-server new -p ');
    expect(() => bound({ mode: 'address', address: '127.0.0.1; reboot', why: '' })).toThrow(
      /mosh-server bind address: "127.0.0.1; reboot" is neither ssh, any nor an IP address/,
    );
  });

  it('notices a mosh-server that could not bind where it was told and bound every IPv4 address instead', () => {
    // mosh 1.4.0's own words, with -i an address the host does not have.
    const said = [
      'Failed binding to 203.0.113.99:60001',
      'Error binding to IP 203.0.113.99: bind: Cannot assign requested address',
      'MOSH CONNECT 60001 ByWwgCVT7s491p8K2mLn+w',
      '[mosh-server detached, pid = 12773]',
    ].join('\n');
    expect(moshServerBindFallback(said)).toBe(
      'mosh-server could not listen on 203.0.113.99 (bind: Cannot assign requested address) and listens on every IPv4 address instead; set mosh.bind_server (or --bind-server) to ssh or to an address that host has',
    );
    expect(moshServerBindFallback('MOSH CONNECT 60001 ByWwgCVT7s491p8K2mLn+w')).toBeUndefined();
  });

  it('the quoted command reaches the program as the same words', () => {
    const cmd = moshServerCommand({ ...step, command: ['printf', '%s|', 'a b', "c'd", '$(x)', '`y`'] });
    const words = cmd.slice(cmd.indexOf(' -- ') + 4);
    expect(execFileSync('sh', ['-c', words], { encoding: 'utf8' })).toBe("a b|c'd|$(x)|`y`|");
  });

  it('parses the connect line (stdout) and the detached pid (stderr)', () => {
    const out = '\r\nMOSH CONNECT 60003 PkxRd7ZoPZVjHA5L7g5wWA\r\n';
    const err = 'mosh-server (mosh 1.4.0)\n\n[mosh-server detached, pid = 15593]\n';
    expect(parseMoshServerOutput(out, err)).toEqual({
      port: 60003,
      key: 'PkxRd7ZoPZVjHA5L7g5wWA',
      pid: 15593,
    });
    expect(parseMoshServerOutput(out, '')).toBeUndefined();
    expect(parseMoshServerOutput('MOSH CONNECT 60003 short', err)).toBeUndefined();
  });

  it('names a missing UTF-8 locale, and a mosh-server that exits 0 without MOSH CONNECT', () => {
    const locale = moshServerFailure(
      1,
      "mosh-server needs a UTF-8 native locale to run.\nThe locale requested by LANG=xx_XX.UTF-8 isn't available here.",
    );
    expect(locale.message).toMatch(/no UTF-8 locale/);
    expect(locale.hint).toMatch(/locale -a/);
    expect(moshServerFailure(0, 'just a wrapper').message).toBe(
      'mosh-server exited without printing its MOSH CONNECT line; its last words: just a wrapper',
    );
  });

  it('explains failures without the output that may hold the key', () => {
    expect(moshServerFailure(127, 'env: ‘mosh-server’: No such file or directory').message).toMatch(
      /not installed/,
    );
    expect(moshServerFailure(1, 'Error binding to any interface: bind: Address already in use').hint).toMatch(
      /widen mosh.server_ports/,
    );
    expect(moshServerFailure(1, 'odd\nlast words').message).toBe(
      'mosh-server exited with code 1: last words',
    );
  });
});

/** Whether no process's command line holds `marker` (within 3 s). */
async function gone(marker: string): Promise<boolean> {
  for (let i = 0; i < 30; i++) {
    const r = spawnSync('pgrep', ['-f', marker], { encoding: 'utf8' });
    if (r.stdout.trim() === '') return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

/** Whether `pid` runs and is no zombie (an init may take seconds to reap one). */
function runs(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** The keeper and what runs under it (the subshell that reads its channel, its `sleep`). */
function keeperFamily(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // gone
  }
  return [pid, ...children];
}

/** Whether none of `pids` runs (within 3 s). */
async function allGone(pids: number[]): Promise<boolean> {
  for (let i = 0; i < 30; i++) {
    if (!pids.some(runs)) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

/** Field 22 of /proc/PID/stat, as the remote commands read it. */
function startOf(pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? '';
}

describe('mosh-server in a kept channel', () => {
  // A stand-in mosh-server on PATH: prints what the real one prints and leaves
  // a detached process whose command line names it, as the real one does.
  const fake = (): { dir: string; env: NodeJS.ProcessEnv } => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-kept-'));
    writeFileSync(
      join(dir, 'mosh-server'),
      [
        '#!/bin/sh',
        "perl -e 'sleep 30' mosh-server-child </dev/null >/dev/null 2>&1 &",
        'echo "MOSH CONNECT 60003 PkxRd7ZoPZVjHA5L7g5wWA"',
        'echo "[mosh-server detached, pid = $!]" >&2',
      ].join('\n'),
    );
    chmodSync(join(dir, 'mosh-server'), 0o755);
    return { dir, env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } };
  };
  const run = (env: NodeJS.ProcessEnv) => {
    const child = spawn('/bin/sh', ['-c', moshServerKeptCommand(step)], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const next = async (): Promise<string> => {
      const r = await lines.next();
      if (r.done) throw new Error('the channel closed');
      return String(r.value);
    };
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    return { child, next, exited };
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const readUntilExit = async (next: () => Promise<string>): Promise<{ out: string; code: number }> => {
    const out: string[] = [];
    for (;;) {
      const line = await next();
      const code = parseServerExit(line);
      if (code !== undefined) return { out: out.join('\n'), code };
      out.push(line);
    }
  };

  it('says its own pid and start, what mosh-server said and its exit, then stops the pid it is sent and says so', async () => {
    const { dir, env } = fake();
    const r = run(env);
    let pid = 0;
    try {
      const keeper = parseKeeper(await r.next());
      // The keeper is the `sh -c` the command runs (under the spawned one here, under sshd there).
      expect(keeper?.pid).toBeGreaterThan(1);
      expect(keeper?.started).toBe(startOf(keeper?.pid ?? 0));
      const { out, code } = await readUntilExit(r.next);
      expect(code).toBe(0);
      const parsed = parseMoshServerOutput(out, out);
      pid = parsed?.pid ?? 0;
      // Its start time, as ps says, for stops over another connection.
      const started = out
        .split('\n')
        .map(parseServerStarted)
        .find((x) => x !== undefined);
      expect(started).toBe(startOf(pid));
      expect(parsed).toMatchObject({ port: 60003, key: 'PkxRd7ZoPZVjHA5L7g5wWA' });
      expect(alive(pid)).toBe(true);
      r.child.stdin.write(`${KEPT}\n${pid}\n`);
      expect(await r.next()).toBe('stopped');
      expect(await r.exited).toBe(0);
    } finally {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('once told KEPT, leaves mosh-server running when the channel closes (a roam), and ends itself within a second or two', async () => {
    const { dir, env } = fake();
    const r = run(env);
    let pid = 0;
    try {
      const keeper = parseKeeper(await r.next())?.pid ?? 0;
      const { out } = await readUntilExit(r.next);
      pid = parseMoshServerOutput(out, out)?.pid ?? 0;
      const family = keeperFamily(keeper);
      r.child.stdin.end(`${KEPT}\n`);
      const closed = Date.now();
      expect(await r.exited).toBe(0);
      expect(Date.now() - closed).toBeLessThan(2_500);
      expect(alive(pid)).toBe(true);
      // The subshell that read the channel has gone with it.
      expect(await allGone(family)).toBe(true);
    } finally {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops mosh-server when the channel closes before KEPT (moshctl died before recording it)', async () => {
    const { dir, env } = fake();
    const r = run(env);
    let pid = 0;
    try {
      const { out } = await readUntilExit(r.next);
      pid = parseMoshServerOutput(out, out)?.pid ?? 0;
      expect(alive(pid)).toBe(true);
      r.child.stdin.end();
      expect(await r.exited).toBe(0);
      expect(await gone('mosh-server-child')).toBe(true);
    } finally {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ends within a second or two of its mosh-server, its channel still open, reader and all', async () => {
    const { dir, env } = fake();
    const r = run(env);
    let pid = 0;
    try {
      const keeper = parseKeeper(await r.next())?.pid ?? 0;
      const { out } = await readUntilExit(r.next);
      pid = parseMoshServerOutput(out, out)?.pid ?? 0;
      r.child.stdin.write(`${KEPT}\n`);
      const family = keeperFamily(keeper);
      // Stopped by pid over another connection, say. Here it stays a zombie until
      // init reaps it, maybe seconds later: the keeper counts it as gone at once.
      process.kill(pid, 'SIGTERM');
      const stopped = Date.now();
      expect(await r.exited).toBe(0);
      expect(Date.now() - stopped).toBeLessThan(2_500);
      expect(await allGone(family)).toBe(true);
    } finally {
      if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops a mosh-server nobody hears of (the connection died before its lines went out)', async () => {
    const { dir, env } = fake();
    const child = spawn('/bin/sh', ['-c', moshServerKeptCommand(step)], {
      env,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdout.destroy(); // the channel is gone: writing to it fails
    try {
      await new Promise((r) => child.on('exit', r));
      // The stand-in's detached process (perl -e 'sleep 30' mosh-server-child) was stopped.
      expect(await gone('mosh-server-child')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a mosh-server that hangs without a word is stopped with its keeper', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-kept-'));
    writeFileSync(join(dir, 'mosh-server'), '#!/bin/sh\nexec perl -e "sleep 60" hung-mosh-server\n');
    chmodSync(join(dir, 'mosh-server'), 0o755);
    const r = run({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` });
    try {
      const keeper = parseKeeper(await r.next());
      expect(keeper?.pid).toBeGreaterThan(1);
      // Run from another process group, as over a fresh ssh connection.
      const stop = (started?: string): string =>
        execFileSync('setsid', ['sh', '-c', stopKeeperCommand(keeper?.pid ?? 0, started)], {
          encoding: 'utf8',
        });
      // Another start: a later process with this pid, left alone.
      expect(parseStop(stop(String(Number(keeper?.started ?? 0) + 1)))).toBe('other');
      expect(parseStop(stop(keeper?.started))).toBe('stopped');
      await r.exited;
      expect(await gone('hung-mosh-server')).toBe(true);
      expect(parseStop(stop(keeper?.started))).toBe('gone');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a keeper stopped while mosh-server starts stops the mosh-server it then hears of', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-kept-'));
    // Detaches its server at once, then takes a second to say so (as over a slow host).
    writeFileSync(
      join(dir, 'mosh-server'),
      [
        '#!/bin/sh',
        "perl -e 'sleep 30' slow-mosh-server-child </dev/null >/dev/null 2>&1 &",
        'sleep 1',
        'echo "MOSH CONNECT 60003 PkxRd7ZoPZVjHA5L7g5wWA"',
        'echo "[mosh-server detached, pid = $!]" >&2',
      ].join('\n'),
      { mode: 0o755 },
    );
    const r = run({ ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` });
    try {
      const keeper = parseKeeper(await r.next());
      // TERM to the keeper alone (stopKeeperCommand also stops what runs under it).
      process.kill(keeper?.pid ?? 0, 'SIGTERM');
      expect(await r.exited).toBe(0);
      expect(await gone('slow-mosh-server-child')).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('with -s, reports the address it binds: the local address of $SSH_CONNECTION, as mosh-server reads it', async () => {
    const { dir, env } = fake();
    const sshStep = { ...step, bind: { mode: 'ssh', why: '' } } as const;
    const boundWith = async (connection: string | undefined): Promise<string | undefined> => {
      const e = { ...env };
      if (connection === undefined) delete e.SSH_CONNECTION;
      else e.SSH_CONNECTION = connection;
      const child = spawn('/bin/sh', ['-c', moshServerKeptCommand(sshStep)], {
        env: e,
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      const lines = createInterface({ input: child.stdout });
      let address: string | undefined;
      let pid = 0;
      for await (const line of lines) {
        address ??= parseServerBound(line);
        pid ||= Number(/detached, pid = (\d+)/.exec(line)?.[1] ?? 0);
        if (parseServerExit(line) !== undefined) break;
      }
      child.stdin.write(`${pid}\n`);
      child.stdin.end();
      await new Promise((r) => child.on('exit', r));
      return address;
    };
    try {
      expect(await boundWith('198.51.100.7 50022 203.0.113.10 22')).toBe('203.0.113.10');
      expect(await boundWith('2001:db8::7 50022 2001:db8::10 22')).toBe('2001:db8::10');
      // An IPv4 client on a dual-stack socket: mosh-server strips the mapped prefix.
      expect(await boundWith('::ffff:198.51.100.7 50022 ::FFFF:203.0.113.10 22')).toBe('203.0.113.10');
      // Without SSH_CONNECTION mosh-server binds every address: no line, the forwarder uses the loopback.
      expect(await boundWith(undefined)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(parseServerBound('MOSHCTL-SERVER BOUND $(reboot)')).toBeUndefined();
  }, 20_000);

  it('runs mosh.server by its path: ~/ is the remote home, spaces stay in one word', async () => {
    const { dir, env } = fake();
    const home = mkdtempSync(join(tmpdir(), 'moshctl-home-'));
    mkdirSync(join(home, 'my bin'));
    copyFileSync(join(dir, 'mosh-server'), join(home, 'my bin', 'mosh-server'));
    // Not on PATH: only the path reaches it.
    const bare = { ...env, PATH: (env.PATH ?? '').split(':').slice(1).join(':'), HOME: home };
    try {
      for (const program of ['~/my bin/mosh-server', join(home, 'my bin', 'mosh-server')]) {
        const child = spawn('/bin/sh', ['-c', moshServerKeptCommand({ ...step, program })], {
          env: bare,
          stdio: ['pipe', 'pipe', 'inherit'],
        });
        const out: string[] = [];
        for await (const line of createInterface({ input: child.stdout })) {
          out.push(line);
          if (parseServerExit(line) !== undefined) break;
        }
        const pid = Number(/detached, pid = (\d+)/.exec(out.join('\n'))?.[1] ?? 0);
        expect(pid, out.join('\n')).toBeGreaterThan(1);
        child.stdin.end(`${pid}\n`);
        await new Promise((r) => child.on('exit', r));
      }
      expect(moshServerCommand({ ...step, program: '~/my bin/mosh-server' })).toContain(
        ` "$HOME"/'my bin/mosh-server' new -p `,
      );
      expect(() => moshServerCommand({ ...step, program: '$(reboot)/mosh-server' })).toThrow(
        /mosh\.server: /,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
  }, 20_000);

  describe('a mosh-server the PATH does not reach: where it is, in the same exec', () => {
    // A home whose login files put ~/odd/bin on PATH (as Homebrew's shellenv in ~/.zprofile
    // does), with a mosh-server there, and another in ~/.local/bin; the session's PATH has only env.
    const setup = (): { home: string; path: string } => {
      const home = mkdtempSync(join(tmpdir(), 'moshctl-home-'));
      for (const d of ['odd/bin', '.local/bin', '.config/fish', 'path'])
        mkdirSync(join(home, d), { recursive: true });
      for (const d of ['odd/bin', '.local/bin']) {
        writeFileSync(join(home, d, 'mosh-server'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
      }
      const add = 'PATH="$HOME/odd/bin:$PATH"; export PATH\n';
      writeFileSync(join(home, '.profile'), add);
      writeFileSync(join(home, '.zprofile'), add);
      // fish reads config.fish for every command, login or not: only a login adds the folder here.
      writeFileSync(
        join(home, '.config/fish/config.fish'),
        'if status is-login\n  set -gx PATH $HOME/odd/bin $PATH\nend\n',
      );
      symlinkSync(
        execFileSync('sh', ['-c', 'command -v env'], { encoding: 'utf8' }).trim(),
        join(home, 'path', 'env'),
      );
      symlinkSync('/usr/bin/busybox', join(home, 'path', 'ash'));
      return { home, path: join(home, 'path') };
    };
    const shells = [
      ['sh', '/bin/sh'],
      ['dash', '/usr/bin/dash'],
      ['bash', '/bin/bash'],
      ['zsh', '/usr/bin/zsh'],
      ['fish', '/usr/bin/fish'],
      ['busybox ash', 'ash'],
    ] as const;

    it.each(shells.filter(([, sh]) => (sh === 'ash' ? existsSync('/usr/bin/busybox') : existsSync(sh))))(
      '%s as the login shell: found through it, and in ~/.local/bin',
      (_name, shell) => {
        const { home, path } = setup();
        try {
          const login = shell === 'ash' ? join(path, 'ash') : shell;
          // sshd runs the command with the login shell, SHELL set to it.
          const r = spawnSync(login, ['-c', moshServerKeptCommand(step)], {
            env: { PATH: path, HOME: home, SHELL: login },
            encoding: 'utf8',
            input: '',
            timeout: 15_000,
          });
          const lines = r.stdout.split('\n');
          // This machine's own mosh-server (/usr/bin) is found too; the home's are what is tested.
          const found = lines
            .map(parseServerFound)
            .filter((x) => x !== undefined)
            .filter((x) => x.path.startsWith(home));
          expect(found, r.stdout + r.stderr).toEqual([
            { how: 'login', path: join(home, 'odd/bin/mosh-server') },
            { how: 'place', path: join(home, '.local/bin/mosh-server') },
          ]);
          expect(lines.map(parseServerExit).find((x) => x !== undefined)).toBe(127);
          const f = moshServerFailure(127, r.stderr, { program: 'mosh-server', found });
          expect(f.message).toBe(
            'mosh-server is not installed (or not on the PATH of a non-interactive ssh session)',
          );
          expect(f.hint).toBe(
            `found at ${join(home, 'odd/bin/mosh-server')} (a login shell finds it there): set mosh.server: ${join(home, 'odd/bin/mosh-server')} for that host in moshproxy.yaml, or run up --server ${join(home, 'odd/bin/mosh-server')} (also there: ${join(home, '.local/bin/mosh-server')})`,
          );
        } finally {
          rmSync(home, { recursive: true, force: true });
        }
      },
      20_000,
    );

    it('names mosh.server when that is what is missing, and says where it looked when nothing is found', () => {
      const none = moshServerFailure(127, "env: '/opt/mosh/mosh-server': No such file or directory", {
        program: '/opt/mosh/mosh-server',
        found: [],
      });
      expect(none.message).toBe(
        'mosh.server /opt/mosh/mosh-server is not there (or not on the PATH of a non-interactive ssh session)',
      );
      expect(none.hint).toBe(
        'install mosh on that host (Debian/Ubuntu: apt install mosh; Fedora: dnf install mosh; macOS: brew install mosh), or set mosh.server (or up --server) to its path: neither a login shell there nor /opt/homebrew/bin, /usr/local/bin, ~/.local/bin, ~/.nix-profile/bin, /run/current-system/sw/bin, /nix/var/nix/profiles/default/bin, /opt/local/bin, /snap/bin, /usr/bin has one',
      );
      const cannot = moshServerFailure(126, "env: 'mosh-server': Permission denied", {
        program: 'mosh-server',
        found: [{ how: 'place', path: '/Applications/Mosh Tools/mosh-server' }],
      });
      expect(cannot.message).toBe(
        "mosh-server is there but cannot run: env: 'mosh-server': Permission denied",
      );
      expect(cannot.hint).toBe(
        "found at /Applications/Mosh Tools/mosh-server: set mosh.server: /Applications/Mosh Tools/mosh-server for that host in moshproxy.yaml, or run up --server '/Applications/Mosh Tools/mosh-server'",
      );
      expect(parseServerFound('MOSHCTL-SERVER FOUND place relative/mosh-server')).toBeUndefined();
    });
  });

  it('reports a missing mosh-server by its exit code', async () => {
    // A PATH with env and nothing else.
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-kept-'));
    symlinkSync(execFileSync('sh', ['-c', 'command -v env'], { encoding: 'utf8' }).trim(), join(dir, 'env'));
    try {
      const r = run({ ...process.env, PATH: dir });
      const { out, code } = await readUntilExit(r.next);
      expect(code).toBe(127);
      expect(moshServerFailure(code, out).message).toMatch(/not installed/);
      r.child.stdin.end();
      await r.exited;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('stopping and checking processes by pid', () => {
  const sh = (cmd: string): string => execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });

  it('stops a matching process, leaves another program alone, and says gone the second time', () => {
    const child = execFileSync('sh', ['-c', 'sleep 30 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
    const pid = Number(child.trim());
    try {
      expect(parseAlive(sh(aliveCommand([{ pid, marker: 'sleep' }])))).toEqual(new Map([[pid, 'alive']]));
      expect(parseStop(sh(stopByPidCommand(pid, 'mosh-server')))).toBe('other');
      expect(parseAlive(sh(aliveCommand([{ pid, marker: 'mosh-server' }])))).toEqual(
        new Map([[pid, 'dead']]),
      );
      expect(parseStop(sh(stopByPidCommand(pid, 'sleep 30')))).toBe('stopped');
      // TERM was sent without waiting; once the process is gone, a second stop says so.
      const deadline = Date.now() + 5000;
      while (
        parseAlive(sh(aliveCommand([{ pid, marker: 'sleep' }]))).get(pid) === 'alive' &&
        Date.now() < deadline
      ) {
        execFileSync('sleep', ['0.1']);
      }
      expect(parseStop(sh(stopByPidCommand(pid, 'sleep 30')))).toBe('gone');
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already stopped by the test
      }
    }
  });

  it('with a recorded start time, leaves alone a process with that pid that started at another time', () => {
    const pid = Number(sh('sleep 30 >/dev/null 2>&1 & echo $!').trim());
    const real = startOf(pid);
    const wrong = String(Number(real) + 1);
    try {
      expect(parseAlive(sh(aliveCommand([{ pid, marker: 'sleep', started: wrong }])))).toEqual(
        new Map([[pid, 'dead']]),
      );
      expect(parseAlive(sh(aliveCommand([{ pid, marker: 'sleep', started: real }])))).toEqual(
        new Map([[pid, 'alive']]),
      );
      expect(parseStop(sh(stopByPidCommand(pid, 'sleep 30', wrong)))).toBe('other');
      expect(parseRelayStop(sh(stopRelayCommand(pid, wrong)))).toBe('other');
      process.kill(pid, 0); // untouched
      expect(parseStop(sh(stopByPidCommand(pid, 'sleep 30', real)))).toBe('stopped');
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // stopped by the test
      }
    }
  });

  it('refuses a pid that is not a plain positive number', () => {
    expect(() => stopByPidCommand(0, 'x')).toThrow(/invalid pid/);
    expect(() => stopByPidCommand(1.5, 'x')).toThrow(/invalid pid/);
    expect(() => stopByPidCommand(4194305, 'x')).toThrow(/invalid pid/);
  });
});

describe('mosh-server in a kept tmux or screen session (mosh.session)', () => {
  const tmux = { program: 'tmux', name: 'moshctl-web' } as const;
  const screen = { program: 'screen', name: 'moshctl-web=' } as const;

  it('checks for the program in the same exec, then runs the session as mosh-server’s command', () => {
    expect(moshServerCommand({ ...step, session: tmux })).toBe(
      "if tmux -V >/dev/null 2>&1 || [ $? -lt 126 ]; then env 'MOSH_SERVER_NETWORK_TMOUT=86400' 'MOSH_SERVER_SIGNAL_TMOUT=60' mosh-server new -p 60000:61000 -l 'LANG=C.UTF-8' -- tmux new-session -A -D -s moshctl-web; else echo 'moshctl: not installed or cannot run: tmux' >&2; false; fi",
    );
    expect(moshServerCommand({ ...step, session: screen, command: ['htop', '-d', '5'] })).toBe(
      "if screen -v >/dev/null 2>&1 || [ $? -lt 126 ]; then env 'MOSH_SERVER_NETWORK_TMOUT=86400' 'MOSH_SERVER_SIGNAL_TMOUT=60' mosh-server new -p 60000:61000 -l 'LANG=C.UTF-8' -- screen -D -RR -S 'moshctl-web=' -- htop -d 5; else echo 'moshctl: not installed or cannot run: screen' >&2; false; fi",
    );
  });

  /** A PATH with env, and stand-ins: mosh-server prints its words; tmux/screen per `keeper`. */
  const fakePath = (keeper: 'runs' | 'missing' | 'cannot-run' | 'fails-version'): string => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-keeper-'));
    symlinkSync(execFileSync('sh', ['-c', 'command -v env'], { encoding: 'utf8' }).trim(), join(dir, 'env'));
    writeFileSync(join(dir, 'mosh-server'), '#!/bin/sh\nprintf "%s|" "$@"\n', { mode: 0o755 });
    const script = keeper === 'fails-version' ? '#!/bin/sh\nexit 1\n' : '#!/bin/sh\nexit 0\n';
    for (const p of ['tmux', 'screen']) {
      if (keeper === 'missing') continue;
      // Like a program a lab hides: the file is there but cannot be run.
      writeFileSync(join(dir, p), script, { mode: keeper === 'cannot-run' ? 0o644 : 0o755 });
    }
    return dir;
  };
  const runKept = async (dir: string, s: Parameters<typeof moshServerKeptCommand>[0]) => {
    const child = spawn('/bin/sh', ['-c', moshServerKeptCommand(s)], {
      env: { ...process.env, PATH: dir },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdin.end();
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    await new Promise((r) => child.on('close', r));
    // moshctl's own marker lines (the keeper's pid, the connection's session) are not mosh-server's output.
    const lines = out
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('MOSHCTL-SERVER KEEPER ') && !l.startsWith('MOSHCTL-SSHD '));
    const code = parseServerExit(lines.pop() ?? '');
    return { out: lines.join('\n'), code };
  };

  it.each(['tmux', 'screen'] as const)(
    'without %s: mosh-server never starts, and the failure says what to install',
    async (program) => {
      for (const how of ['missing', 'cannot-run'] as const) {
        const dir = fakePath(how);
        try {
          const session = program === 'tmux' ? tmux : screen;
          const { out, code } = await runKept(dir, { ...step, session });
          expect(code).toBe(1);
          expect(out).not.toContain('new|'); // the stand-in mosh-server printed nothing
          const f = moshServerFailure(code ?? null, out);
          expect(f.message).toBe(
            `${program} is not installed (or cannot run) there, and mosh.session: ${program} runs the shell in it`,
          );
          expect(f.hint).toMatch(
            new RegExp(
              `^install ${program} on that host \\(Debian/Ubuntu: apt install ${program};.*or set mosh\\.session: none`,
            ),
          );
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }
    },
  );

  it('passes the session and the command to mosh-server as the same words; a failing -v still counts as there', async () => {
    const dir = fakePath('fails-version');
    try {
      const cmd = ['printf', '%s|', 'a b', "c'd", '$(x)'];
      const r = await runKept(dir, { ...step, session: screen, command: cmd });
      expect(r.code).toBe(0);
      expect(r.out).toBe(
        "new|-p|60000:61000|-l|LANG=C.UTF-8|--|screen|-D|-RR|-S|moshctl-web=|--|printf|%s||a b|c'd|$(x)|",
      );
      const t = await runKept(dir, { ...step, session: tmux });
      expect(t.out).toBe('new|-p|60000:61000|-l|LANG=C.UTF-8|--|tmux|new-session|-A|-D|-s|moshctl-web|');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// The agent link, its script run for real under dash, bash and busybox ash
// (with busybox's own applets), in a temporary HOME, against a fake forwarded
// agent: a Unix socket the test listens on. The chain is faked: its channel
// is the shell run here as the target's login shell would run the command.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EnvError } from '../../src/errors.js';
import { AGENT_LINK_COMMAND, AgentLink, unlinkAgentCommand } from '../../src/execute/forward/agent.js';
import { parseAgentLine, parseAgentUnlink } from '../../src/forward/agent-link.js';
import { LineQueue } from '../../src/transport/line-channel.js';
import type { ChannelOptions, LineChannel } from '../../src/transport/types.js';
import { FakeChain, until } from './forward-fakes.js';

const BUSYBOX = ['/usr/bin/busybox', '/bin/busybox'].find((p) => existsSync(p));
const SOCKET = '~/.moshctl/agent/s1.sock';
const root = mkdtempSync(join(tmpdir(), 'moshctl-agent-'));
const children = new Set<ChildProcess>();
const servers: net.Server[] = [];
afterEach(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Shell {
  label: string;
  path: string;
  PATH: string;
}
const shells: Shell[] = [
  { label: 'dash', path: '/bin/dash', PATH: '/usr/bin:/bin' },
  { label: 'bash', path: '/bin/bash', PATH: '/usr/bin:/bin' },
];
if (BUSYBOX)
  shells.push({
    label: 'busybox ash, its applets only',
    path: join(root, 'bb', 'sh'),
    PATH: join(root, 'bb'),
  });
beforeAll(() => {
  if (!BUSYBOX) return;
  mkdirSync(join(root, 'bb'));
  const applets = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
  for (const a of applets) symlinkSync(BUSYBOX, join(root, 'bb', a));
});

/** A fake forwarded agent: a socket that answers `agent` to whoever connects. */
async function agentSocket(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  const srv = net.createServer((s) => s.end('agent ' + name));
  await new Promise<void>((r) => srv.listen(path, r));
  servers.push(srv);
  return path;
}

/** A chain whose agent channel is `shell` run here, with HOME and SSH_AUTH_SOCK of the test's choosing. */
class ShellChain extends FakeChain {
  exited: Promise<number | null>[] = [];
  constructor(
    private readonly shell: Shell,
    private readonly env: { HOME: string; SSH_AUTH_SOCK?: string },
  ) {
    super();
  }
  override openChannel(_host: string, command: string, opts: ChannelOptions): Promise<LineChannel> {
    expect(opts.forwardAgent).toBe(true);
    // The login shell runs the command line; its /bin/sh is the shell under test.
    const line = command.startsWith('/bin/sh ') ? `${this.shell.path} ${command.slice(8)}` : command;
    const child = spawn(this.shell.path, ['-c', line], { env: { PATH: this.shell.PATH, ...this.env } });
    children.add(child);
    const channel = new LineQueue(
      (t) => child.stdin.write(t),
      () => child.stdin.end(),
    );
    child.stdout.setEncoding('utf8').on('data', (d: string) => channel.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => channel.pushStderr(d));
    this.exited.push(new Promise((r) => child.once('close', (code) => (channel.finish(), r(code)))));
    child.stdin.write(opts.stdin);
    return Promise.resolve(channel);
  }
}

const runScript = (shell: Shell, command: string, HOME: string): string =>
  spawnSync(shell.path, ['-c', command.replace(/^\/bin\/sh /, `${shell.path} `)], {
    env: { PATH: shell.PATH, HOME },
    encoding: 'utf8',
  }).stdout;

describe.each(shells)('agent link under $label', (shell) => {
  let n = 0;
  const home = (): string => {
    const h = join(root, `${shell.label.split(' ')[0]}-${++n}`);
    mkdirSync(h, { mode: 0o700 });
    return h;
  };
  const linkOf = (h: string): string => join(h, '.moshctl/agent/s1.sock');

  it('points the stable path at the forwarded socket in 0700 directories, and removes it on EOF', async () => {
    const h = home();
    const sock = await agentSocket(h, 'a1');
    const chain = new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: sock });
    const link = new AgentLink({ host: 'target', socket: SOCKET });
    await link.attach(chain);
    expect(link.status()).toEqual({ host: 'target', socket: SOCKET, up: true });
    expect(readlinkSync(linkOf(h))).toBe(sock);
    expect(statSync(join(h, '.moshctl')).mode & 0o777).toBe(0o700);
    expect(statSync(join(h, '.moshctl/agent')).mode & 0o777).toBe(0o700);
    // ssh-add would reach the agent through the link.
    const said = await new Promise<string>((r) => {
      let got = '';
      net
        .connect(linkOf(h))
        .on('data', (d) => (got += String(d)))
        .on('close', () => r(got));
    });
    expect(said).toBe('agent a1');
    link.detach(chain);
    expect(await chain.exited[0]).toBe(0);
    expect(() => lstatSync(linkOf(h))).toThrow(/ENOENT/);
    expect(link.status().up).toBe(false);
  });

  it("re-points the link on the next chain by rename, and the old channel's end leaves it", async () => {
    const h = home();
    const first = new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: await agentSocket(h, 'a1') });
    const second = new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: await agentSocket(h, 'a2') });
    const link = new AgentLink({ host: 'target', socket: SOCKET });
    await link.attach(first);
    // No detach: the old channel ends only once the new link is in place.
    await link.attach(second);
    expect(await first.exited[0]).toBe(0);
    expect(readlinkSync(linkOf(h))).toBe(join(h, 'a2'));
    expect(readdirSync(join(h, '.moshctl/agent'))).toEqual(['s1.sock']);
    expect(link.status().up).toBe(true);
    await link.close();
    expect(await second.exited[0]).toBe(0);
    expect(readdirSync(join(h, '.moshctl/agent'))).toEqual([]);
  });

  it('says the agent was not forwarded when SSH_AUTH_SOCK is unset or not a socket', async () => {
    const h = home();
    const link = new AgentLink({ host: 'target', socket: SOCKET });
    const err = (await link.attach(new ShellChain(shell, { HOME: h })).catch((e: unknown) => e)) as EnvError;
    expect(err).toBeInstanceOf(EnvError);
    expect(err.message).toMatch(
      /^agent forwarding to target: no agent was forwarded \(SSH_AUTH_SOCK is not set\)/,
    );
    expect(err.hint).toMatch(/AllowAgentForwarding yes/);
    expect(link.status()).toMatchObject({ up: false, lastError: expect.stringMatching(/not set/) as string });
    writeFileSync(join(h, 'plain'), '');
    await expect(
      link.attach(new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: join(h, 'plain') })),
    ).rejects.toThrow(/is not a socket/);
    expect(existsSync(join(h, '.moshctl'))).toBe(false);
  });

  it('refuses a directory others can write to, or that is not the user’s', async () => {
    const h = home();
    const sock = await agentSocket(h, 'a1');
    mkdirSync(join(h, '.moshctl/agent'), { recursive: true });
    chmodSync(join(h, '.moshctl'), 0o777);
    const link = new AgentLink({ host: 'target', socket: SOCKET });
    await expect(link.attach(new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: sock }))).rejects.toThrow(
      /\.moshctl is writable by others \(drwxrwxrwx\)/,
    );
    chmodSync(join(h, '.moshctl'), 0o700);
    chmodSync(join(h, '.moshctl/agent'), 0o720);
    await expect(link.attach(new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: sock }))).rejects.toThrow(
      /agent is writable by others/,
    );
    expect(existsSync(linkOf(h))).toBe(false);
    if (process.getuid?.() !== 0) return; // giving a directory away needs root (this machine and CI run as root)
    chmodSync(join(h, '.moshctl/agent'), 0o700);
    chownSync(join(h, '.moshctl/agent'), 65534, 65534);
    await expect(link.attach(new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: sock }))).rejects.toThrow(
      /agent is owned by uid 65534, not by you/,
    );
    // A link to someone else's directory is judged by that directory.
    rmSync(join(h, '.moshctl'), { recursive: true });
    const theirs = join(root, `theirs-${shell.label.split(' ')[0]}`);
    mkdirSync(theirs, { recursive: true });
    chownSync(theirs, 65534, 65534);
    symlinkSync(theirs, join(h, '.moshctl'));
    await expect(link.attach(new ShellChain(shell, { HOME: h, SSH_AUTH_SOCK: sock }))).rejects.toThrow(
      /\.moshctl is owned by uid 65534/,
    );
  });

  it('unlinkAgentCommand removes the link and the empty directory, and leaves what is not a link', () => {
    const h = home();
    mkdirSync(join(h, '.moshctl/agent'), { recursive: true });
    symlinkSync('/tmp/ssh-XXXX/agent.1', linkOf(h));
    expect(parseAgentUnlink(runScript(shell, unlinkAgentCommand(SOCKET), h))).toBe('unlinked');
    expect(existsSync(join(h, '.moshctl/agent'))).toBe(false);
    expect(parseAgentUnlink(runScript(shell, unlinkAgentCommand(SOCKET), h))).toBe('absent');
    mkdirSync(join(h, '.moshctl/agent'), { recursive: true });
    writeFileSync(linkOf(h), 'not a link');
    expect(parseAgentUnlink(runScript(shell, unlinkAgentCommand(SOCKET), h))).toBe('other');
    expect(existsSync(linkOf(h))).toBe(true);
  });
});

describe('agent link', () => {
  it('rejects when the script says nothing in time, and ends the channel', async () => {
    const chain = new FakeChain();
    let ended = false;
    chain.openChannel = () =>
      Promise.resolve(
        new LineQueue(
          () => {},
          () => (ended = true),
        ),
      );
    const link = new AgentLink({ host: 'target', socket: SOCKET }, { readyMs: 50 });
    await expect(link.attach(chain)).rejects.toThrow(/the link script said nothing within 50 ms/);
    expect(ended).toBe(true);
  });

  it('marks itself down when the channel closes under it', async () => {
    const chain = new FakeChain();
    const channel = new LineQueue(
      () => {},
      () => {},
    );
    chain.openChannel = () => Promise.resolve(channel);
    const link = new AgentLink({ host: 'target', socket: SOCKET });
    channel.push('MOSHCTL-AGENT LINKED\n');
    await link.attach(chain);
    expect(link.status().up).toBe(true);
    channel.finish();
    await until(() => !link.status().up);
    expect(link.status().lastError).toBe('the agent channel to target closed');
  });

  it('does not count a chain that went before its ready line as up', async () => {
    const chain = new FakeChain();
    let ended = false;
    const channel = new LineQueue(
      () => {},
      () => (ended = true),
    );
    chain.openChannel = () => Promise.resolve(channel);
    const link = new AgentLink({ host: 'target', socket: SOCKET });
    const attached = link.attach(chain);
    link.detach(chain);
    channel.push('MOSHCTL-AGENT LINKED\n');
    await attached;
    expect(link.status().up).toBe(false);
    expect(ended).toBe(true);
  });

  it('says a connection failure is one, not a directory problem', async () => {
    const chain = new FakeChain();
    chain.openChannel = () =>
      Promise.reject(new Error('cannot run a command on target: the connection is closed'));
    const err = (await new AgentLink({ host: 'target', socket: SOCKET })
      .attach(chain)
      .catch((e: unknown) => e)) as EnvError;
    expect(err.message).toBe(
      'agent forwarding to target: cannot run a command on target: the connection is closed',
    );
    expect(err.hint).toMatch(/next chain/);
  });

  it('takes only ~/.moshctl/agent/NAME.sock', () => {
    for (const bad of [
      '~/.moshctl/agent/../x.sock',
      "~/.moshctl/agent/a'b.sock",
      '/tmp/x.sock',
      '~/.moshctl/agent/.sock',
    ]) {
      expect(() => unlinkAgentCommand(bad)).toThrow(/invalid socket path/);
      expect(() => new AgentLink({ host: 't', socket: bad })).toThrow(/invalid socket path/);
    }
    expect(unlinkAgentCommand('~/.moshctl/agent/work-1.sock')).toMatch(
      / moshctl-agent-unlink '~\/\.moshctl\/agent\/work-1\.sock'$/,
    );
  });

  it('runs under /bin/sh whatever the login shell, with nothing fish reads differently', () => {
    expect(AGENT_LINK_COMMAND.startsWith("/bin/sh -c 'IFS= read -r p")).toBe(true);
    expect(AGENT_LINK_COMMAND).not.toContain('\\\\');
    expect(AGENT_LINK_COMMAND.endsWith(' moshctl-agent')).toBe(true);
  });

  it('parses its lines', () => {
    expect(parseAgentLine('MOSHCTL-AGENT LINKED')).toEqual({ linked: true });
    expect(parseAgentLine('MOSHCTL-AGENT NOT-FORWARDED no agent')).toEqual({
      linked: false,
      why: 'no agent',
      forwarded: false,
    });
    expect(parseAgentLine('MOSHCTL-AGENT ERROR bad dir')).toEqual({
      linked: false,
      why: 'bad dir',
      forwarded: true,
    });
    expect(parseAgentLine('Welcome to the target')).toBeUndefined();
    expect(parseAgentUnlink('motd\nMOSHCTL-AGENT ERROR cannot remove x\n')).toEqual({
      error: 'cannot remove x',
    });
    expect(parseAgentUnlink('')).toBeUndefined();
  });
});

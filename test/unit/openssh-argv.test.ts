import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import { UserError } from '../../src/errors.js';
import {
  configArg,
  controlPath,
  escapeTokens,
  execArgv,
  fileListArg,
  masterArgv,
  ownGroupPrefix,
  proxyCommandVia,
  proxyWithSignals,
  remoteForwardArgv,
  stdioForwardArgv,
} from '../../src/openssh/argv.js';
import { socketPathFits } from '../../src/openssh/control-dir.js';
import { sshHost } from '../support/ssh-host.js';

function host(over: Partial<SshHost> = {}): SshHost {
  return sshHost({
    ssh_name: 'bastion.example.com',
    address: '198.51.100.7',
    port: 2222,
    user: 'alice',
    identity_files: ['/home/alice/.ssh/id_ed25519', '/home/alice/.ssh/id_ecdsa_sk'],
    certificate_files: ['/home/alice/.ssh/id_ed25519-cert.pub'],
    known_hosts: ['/home/alice/.ssh/known_hosts', '/home/alice/team hosts'],
    global_known_hosts: ['/etc/ssh/ssh_known_hosts'],
    identity_agent: undefined,
    ssh_client: 'openssh',
    ...over,
  });
}

const DIR = '/run/user/1000/moshctl-Ab12Cd';

describe('masterArgv', () => {
  it('gives the first hop every resolved value, ProxyCommand none and VERBOSE logging', () => {
    expect(
      masterArgv({
        host: host(),
        index: 0,
        controlDir: DIR,
        sshPath: '/usr/bin/ssh',
        prev: undefined,
        sshConfigFile: '/home/alice/ssh_config',
      }),
    ).toEqual([
      '-M',
      '-N',
      '-S',
      `${DIR}/0`,
      '-E',
      `${DIR}/0.log`,
      '-o',
      'ControlMaster=yes',
      '-o',
      'ControlPersist=no',
      '-F',
      '/home/alice/ssh_config',
      '-l',
      'alice',
      '-p',
      '2222',
      '-o',
      'HostName=198.51.100.7',
      '-o',
      'IdentityFile=/home/alice/.ssh/id_ed25519',
      '-o',
      'IdentityFile=/home/alice/.ssh/id_ecdsa_sk',
      '-o',
      'CertificateFile=/home/alice/.ssh/id_ed25519-cert.pub',
      '-o',
      'UserKnownHostsFile=/home/alice/.ssh/known_hosts "/home/alice/team hosts"',
      '-o',
      'GlobalKnownHostsFile=/etc/ssh/ssh_known_hosts',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'HashKnownHosts=no',
      '-o',
      'ForwardAgent=no',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'ServerAliveInterval=15',
      '-o',
      'ServerAliveCountMax=3',
      '-o',
      'ClearAllForwardings=yes',
      '-o',
      'BatchMode=no',
      '-o',
      'ProxyCommand=none',
      '-o',
      'LogLevel=VERBOSE',
      'bastion.example.com',
    ]);
  });

  it('reaches an inner hop through the previous master, with its own alias, agent and policy', () => {
    const target = host({
      name: 'target',
      ssh_name: 'db1',
      address: '2001:db8::10',
      port: 22,
      user: 'root',
      identity_files: [],
      certificate_files: [],
      known_hosts: ['/home/alice/.ssh/known_hosts'],
      global_known_hosts: [],
      host_key_alias: 'db1.internal',
      host_key_policy: 'accept-new',
      identity_agent: '/run/user/1000/gnupg/S.gpg-agent.ssh',
      server_alive_interval: 0,
      hash_known_hosts: true,
    });
    expect(
      masterArgv({ host: target, index: 1, controlDir: DIR, sshPath: '/usr/bin/ssh', prev: host() }),
    ).toEqual([
      '-M',
      '-N',
      '-S',
      `${DIR}/1`,
      '-E',
      `${DIR}/1.log`,
      '-o',
      'ControlMaster=yes',
      '-o',
      'ControlPersist=no',
      '-l',
      'root',
      '-p',
      '22',
      '-o',
      'HostName=2001:db8::10',
      '-o',
      'UserKnownHostsFile=/home/alice/.ssh/known_hosts',
      '-o',
      'GlobalKnownHostsFile=/dev/null',
      '-o',
      'HostKeyAlias=db1.internal',
      '-o',
      'StrictHostKeyChecking=accept-new',
      '-o',
      'HashKnownHosts=yes',
      '-o',
      'IdentityAgent=/run/user/1000/gnupg/S.gpg-agent.ssh',
      '-o',
      'ForwardAgent=no',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'ServerAliveInterval=0',
      '-o',
      'ServerAliveCountMax=3',
      '-o',
      'ClearAllForwardings=yes',
      '-o',
      'BatchMode=no',
      '-o',
      `ProxyCommand=/usr/bin/ssh -E ${DIR}/1.log -F /dev/null -S ${DIR}/0 -o ControlMaster=no -o ProxyCommand=false -o BatchMode=yes -W '[%h]:%p' bastion.example.com`,
      '-o',
      'LogLevel=VERBOSE',
      'db1',
    ]);
  });

  it("keeps the first hop's own ProxyCommand as ssh_config gave it", () => {
    const argv = masterArgv({
      host: host({ proxy_command: 'cloudflared access ssh --hostname %h' }),
      index: 0,
      controlDir: DIR,
      sshPath: '/usr/bin/ssh',
      prev: undefined,
    });
    expect(argv).toContain('ProxyCommand=cloudflared access ssh --hostname %h');
    // Started with HUP and INT back at their defaults, so ssh's SIGHUP at exit ends a hanging broker.
    expect(
      masterArgv({
        host: host({ proxy_command: 'exec cloudflared access ssh --hostname %h' }),
        index: 0,
        controlDir: DIR,
        sshPath: '/usr/bin/ssh',
        prev: undefined,
        signalReset: 'env',
      }),
    ).toContain('ProxyCommand=env --default-signal=HUP,INT cloudflared access ssh --hostname %h');
  });

  it('starts a ProxyCommand with HUP and INT at their defaults, through env or perl, words untouched', () => {
    const cmd = `aws ssm start-session --target %h --parameters 'portNumber=%p' 2>/dev/null`;
    expect(proxyWithSignals(cmd, undefined)).toBe(cmd);
    expect(proxyWithSignals(cmd, 'env')).toBe(`env --default-signal=HUP,INT ${cmd}`);
    const perl = proxyWithSignals(`  exec ${cmd}`, 'perl');
    expect(perl.startsWith(`perl -e '$SIG{HUP} = $SIG{INT} = "DEFAULT"; `)).toBe(true);
    expect(perl.endsWith(`' ${cmd}`)).toBe(true);
  });

  it.each(['env', 'perl'] as const)(
    'through %s, a ProxyCommand started with HUP ignored (as under a master) dies of SIGHUP, its quoted words kept',
    (reset) => {
      // What ssh does: `exec COMMAND` in a shell, whose HUP and INT the master's wrapper ignores.
      const cmd = `sh -c 'echo "hello there"; kill -HUP $$; echo survived'`;
      const run = (command: string) =>
        spawnSync('sh', ['-c', `trap '' INT HUP; exec sh -c "exec $0"`, command], { encoding: 'utf8' });
      const plain = run(cmd);
      expect(plain.stdout).toBe('hello there\nsurvived\n');
      const reset_ = run(proxyWithSignals(cmd, reset));
      expect(reset_.stdout).toBe('hello there\n');
      expect(reset_.signal).toBe('SIGHUP');
    },
  );

  it('passes the default agent only to hosts that name none', () => {
    const base = { index: 0, controlDir: DIR, sshPath: '/usr/bin/ssh', prev: undefined };
    expect(masterArgv({ ...base, host: host(), defaultAgent: 'none' })).toContain('IdentityAgent=none');
    expect(
      masterArgv({ ...base, host: host({ identity_agent: 'SSH_AUTH_SOCK' }), defaultAgent: 'none' }),
    ).toContain('IdentityAgent=SSH_AUTH_SOCK');
  });

  it('lets only the agent host forward the agent, and says no on every other master (ssh_config may say yes)', () => {
    const base = { index: 0, controlDir: DIR, sshPath: '/usr/bin/ssh', prev: undefined };
    const forward = (argv: string[]): string[] => argv.filter((a) => a.startsWith('ForwardAgent='));
    expect(forward(masterArgv({ ...base, host: host() }))).toEqual(['ForwardAgent=no']);
    expect(forward(masterArgv({ ...base, host: host(), forwardAgent: false }))).toEqual(['ForwardAgent=no']);
    expect(forward(masterArgv({ ...base, host: host(), forwardAgent: true }))).toEqual(['ForwardAgent=yes']);
  });

  it('refuses a name ssh would read as an option', () => {
    const base = { index: 0, controlDir: DIR, sshPath: '/usr/bin/ssh', prev: undefined };
    expect(() => masterArgv({ ...base, host: host({ ssh_name: '-oProxyCommand=x' }) })).toThrow(UserError);
  });
});

describe('paths in ssh options', () => {
  it('doubles % so that OpenSSH does not expand it as a token', () => {
    expect(escapeTokens('/home/a%d/100%/id')).toBe('/home/a%%d/100%%/id');
    const argv = masterArgv({
      host: host({
        identity_files: ['/keys/50%off'],
        known_hosts: ['/kh/%h'],
        global_known_hosts: ['/g/%h'],
      }),
      index: 0,
      controlDir: DIR,
      sshPath: '/usr/bin/ssh',
      prev: undefined,
    });
    expect(argv).toContain('IdentityFile=/keys/50%%off');
    expect(argv).toContain('UserKnownHostsFile=/kh/%%h');
    // GlobalKnownHostsFile takes no tokens, so its % stays single.
    expect(argv).toContain('GlobalKnownHostsFile=/g/%h');
  });

  it('quotes a known_hosts list entry by entry, only where needed', () => {
    expect(fileListArg(['/a/known_hosts', "/b/it's here", '/c/x#1', '/d/e=f'], 'known_hosts', true)).toBe(
      '/a/known_hosts "/b/it\'s here" "/c/x#1" "/d/e=f"',
    );
    expect(fileListArg([], 'known_hosts', true)).toBe('/dev/null');
  });

  it('refuses what ssh cannot take inside quotes', () => {
    expect(() => configArg('/a "b"', 'IdentityFile')).toThrow(UserError);
    expect(() => configArg('/a\\b', 'IdentityFile')).toThrow(/backslash/);
    expect(() => configArg('/a\nb', 'IdentityFile')).toThrow(/control character/);
  });
});

describe('proxyCommandVia', () => {
  it('escapes % in paths and quotes a name the shell would read', () => {
    expect(proxyCommandVia('/opt/ssh%1/bin/ssh', `${DIR}/0`, "jump host's", `${DIR}/1.log`)).toBe(
      `/opt/ssh%%1/bin/ssh -E ${DIR}/1.log -F /dev/null -S ${DIR}/0 -o ControlMaster=no -o ProxyCommand=false -o BatchMode=yes -W '[%h]:%p' 'jump host'\\''s'`,
    );
  });

  it('starts the -W client in a process group of its own, through setsid or perl, when asked', () => {
    const tail = `/usr/bin/ssh -E ${DIR}/1.log -F /dev/null -S ${DIR}/0 -o ControlMaster=no -o ProxyCommand=false -o BatchMode=yes -W '[%h]:%p' b`;
    expect(proxyCommandVia('/usr/bin/ssh', `${DIR}/0`, 'b', `${DIR}/1.log`, 'setsid')).toBe(`setsid ${tail}`);
    expect(proxyCommandVia('/usr/bin/ssh', `${DIR}/0`, 'b', `${DIR}/1.log`, 'perl')).toBe(
      `perl -e 'setpgrp(0, 0); exec {$ARGV[0]} @ARGV or die "$ARGV[0]: $!\\n"' ${tail}`,
    );
  });

  // OpenSSH's mux client catches INT and HUP whatever it inherited: only another
  // process group keeps a Ctrl-C, or the terminal's end, from ending the hop.
  it.each(['setsid', 'perl'] as const)(
    "through %s, the command runs in a process group that is not its parent's, under its own pid",
    (how) => {
      const probe = spawnSync(
        how === 'setsid' ? 'setsid' : 'perl',
        how === 'setsid' ? ['true'] : ['-e', '1'],
      );
      if (probe.status !== 0) return; // not on this machine: moshctl then leaves the hop as it was
      // What ssh does: `exec COMMAND` in a shell, itself a child (not a group leader) of ssh.
      const command = [...ownGroupPrefix(how), 'sh', '-c', `'echo $$ $(ps -o pgid= -p $$)'`].join(' ');
      const r = spawnSync('sh', ['-c', 'sh -c "exec $0"; echo "$$ $(ps -o pgid= -p $$)"', command], {
        encoding: 'utf8',
      });
      const [inner, outer] = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number));
      // A group of its own, led by the command itself: ssh's pid for it stays right.
      expect(inner?.[1]).toBe(inner?.[0]);
      expect(inner?.[1]).not.toBe(outer?.[1]);
    },
  );

  it('refuses a path with characters the shell would interpret', () => {
    expect(() => proxyCommandVia('/opt/my ssh/ssh', `${DIR}/0`, 'b', `${DIR}/1.log`)).toThrow(
      /not shell-safe/,
    );
  });
});

describe('execArgv', () => {
  it('runs the command as one argument through the master, with no pty, agent or X11', () => {
    expect(execArgv(`${DIR}/1`, 'db1', 'echo "a b"; exit 3')).toEqual([
      '-F',
      '/dev/null',
      '-S',
      `${DIR}/1`,
      '-o',
      'ControlMaster=no',
      '-o',
      'ProxyCommand=false',
      '-o',
      'BatchMode=yes',
      '-T',
      '-a',
      '-x',
      '-o',
      'RemoteCommand=none',
      '-o',
      'LogLevel=ERROR',
      'db1',
      'echo "a b"; exit 3',
    ]);
  });

  it('asks for the agent (-A) instead of refusing it only when told to', () => {
    const argv = execArgv(`${DIR}/1`, 'db1', 'ssh-add -l', { forwardAgent: true });
    expect(argv).toContain('-A');
    expect(argv).toContain('ForwardAgent=yes');
    expect(argv).not.toContain('-a');
    expect(execArgv(`${DIR}/1`, 'db1', 'true', { forwardAgent: false })).toContain('-a');
    expect(execArgv(`${DIR}/1`, 'db1', 'true')).not.toContain('-A');
  });
});

describe('stdioForwardArgv', () => {
  it('is a mux client of the master with -W and nothing else: no pty, agent, X11 or command', () => {
    expect(stdioForwardArgv(`${DIR}/1`, 'db1', '[2001:db8::10]:5432')).toEqual([
      '-F',
      '/dev/null',
      '-S',
      `${DIR}/1`,
      '-o',
      'ControlMaster=no',
      '-o',
      'ProxyCommand=false',
      '-o',
      'BatchMode=yes',
      '-T',
      '-a',
      '-x',
      // The only level at which the mux client says the server confirmed the channel.
      '-o',
      'LogLevel=DEBUG1',
      '-W',
      '[2001:db8::10]:5432',
      'db1',
    ]);
  });
});

describe('remoteForwardArgv', () => {
  it('asks the master for one -R forward with -O forward, the spec as one argument', () => {
    expect(remoteForwardArgv(`${DIR}/2`, 'target', 'localhost:0:/run/user/1000/a b.sock')).toEqual([
      '-F',
      '/dev/null',
      '-S',
      `${DIR}/2`,
      '-o',
      'ControlMaster=no',
      '-o',
      'ProxyCommand=false',
      '-o',
      'BatchMode=yes',
      '-o',
      'LogLevel=ERROR',
      '-O',
      'forward',
      '-R',
      'localhost:0:/run/user/1000/a b.sock',
      'target',
    ]);
  });
});

describe('control socket paths', () => {
  it('are short and checked against the Unix socket limit, with room for OpenSSH’s temporary suffix', () => {
    expect(controlPath(DIR, 2)).toBe(`${DIR}/2`);
    expect(socketPathFits('/tmp', 3)).toBe(true);
    expect(socketPathFits('/run/user/1000', 3)).toBe(true);
    // 103 bytes less "/moshctl-cm-XXXXXX/0" (20) less OpenSSH's ".<16 hex>" (17) leaves 66; hop 10 needs one more.
    expect(socketPathFits(`/${'x'.repeat(65)}`, 1)).toBe(true);
    expect(socketPathFits(`/${'x'.repeat(66)}`, 1)).toBe(false);
    expect(socketPathFits(`/${'x'.repeat(65)}`, 11)).toBe(false);
  });
});

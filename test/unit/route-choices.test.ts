// What moshctl chooses by itself for a route: the ssh client (openssh when a
// host needs what ssh2 cannot do, and nothing names a client) and the
// transport (a first hop behind a ProxyCommand, an access broker, has no UDP
// path of its own). Hosts are resolved from `ssh -G`-shaped text, as for real.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstHopResolves, resolveRoute, type HostsContext } from '../../src/config/hosts.js';
import { loadConfig } from '../../src/config/load.js';
import { UserError } from '../../src/errors.js';
import { formatPlan } from '../../src/plan/format.js';
import { planUp, type PlanOptions } from '../../src/plan/plan.js';
import { ssh2Needs } from '../../src/ssh/needs.js';
import { tempTree } from './helpers.js';

const local = { name: 'me', home: '/home/me', uid: 1000 };
const BROKER = 'aws ssm start-session --target %h';

/** `ssh -G` for a name, with ssh_config's lines for it. */
function g(name: string, over: Record<string, string> = {}): string {
  const base: Record<string, string> = {
    user: 'me',
    hostname: name,
    port: '22',
    userknownhostsfile: '/home/me/.ssh/known_hosts',
    globalknownhostsfile: '/etc/ssh/ssh_known_hosts',
    ...over,
  };
  return Object.entries(base)
    .map(([k, v]) => `${k} ${v}`)
    .join('\n');
}

/** ssh_config of a person with a broker-reached host, one behind it, and plain hosts. */
const sshConfig: Record<string, string> = {
  'i-0abc123': g('i-0abc123', { proxycommand: BROKER }),
  // The article's setup: ssh through a proxy, UDP straight to the host, whose name resolves.
  'db.example.org': g('db.example.org', { proxycommand: 'ssh -q proxy nc %h %p' }),
  devbox: g('devbox', { hostname: '10.0.3.12', proxyjump: 'i-0abc123' }),
  // A ProxyCommand on an inner hop is not how the chain reaches it.
  inner: g('inner', { hostname: '10.0.3.1', proxycommand: 'ssh gate -W %h:%p' }),
  deep: g('deep', { hostname: '10.0.3.40', proxyjump: 'plain,inner' }),
  plain: g('plain', { hostname: 'plain.example.org' }),
  carded: g('carded', {
    hostname: 'carded.example.org',
    certificatefile: '/home/me/.ssh/id_ed25519-cert.pub',
  }),
};

/** Files the hosts name: known_hosts with a host CA, and a FIDO key. */
const files: Record<string, string> = {};

function context(over: Partial<HostsContext> = {}): HostsContext {
  return {
    local,
    exists: () => false,
    sshConfigLabel: '~/.ssh/config',
    resolves: (n) => Promise.resolve(n.endsWith('.example.org')),
    sshG: (name) => Promise.resolve(sshConfig[name] ?? g(name)),
    ssh2Needs: (host) =>
      ssh2Needs(host, (p) => Promise.resolve(files[p] ? Buffer.from(files[p]) : undefined)),
    ...over,
  };
}

/** No moshproxy.yaml, or one with only settings. */
function loaded(yaml?: string) {
  if (yaml === undefined) return loadConfig([], { HOME: '/home/me' });
  const dir = tempTree({ 'moshproxy.yaml': yaml });
  return loadConfig([join(dir, 'moshproxy.yaml')], { HOME: '/home/me' });
}

async function plan(name: string, options: PlanOptions = {}, yaml?: string, ctx = context()) {
  const config = await resolveRoute(loaded(yaml), name, ctx);
  return planUp(config, name, { firstHopResolves: await firstHopResolves(config, name, ctx) }, options);
}

function head(p: ReturnType<typeof planUp>): string {
  return formatPlan(p).split('\n').slice(0, 3).join('\n');
}

describe('a route whose first hop is reached through a ProxyCommand (an access broker)', () => {
  it('goes by openssh and tcp with no options, and the plan says why', async () => {
    const p = await plan('i-0abc123');
    expect(head(p)).toBe(
      [
        'moshctl up i-0abc123: local → i-0abc123',
        `ssh client: openssh (chosen by itself: i-0abc123 needs a ProxyCommand (${BROKER}), which the built-in ssh2 cannot do)`,
        "transport: tcp (chosen by itself: i-0abc123 is reached through a ProxyCommand and its address i-0abc123 does not resolve here, so mosh's UDP has no way to it)",
      ].join('\n'),
    );
    expect(p.steps.map((s) => s.kind)).toEqual(['connect', 'server', 'forward', 'client']);
  });

  it('a host behind a brokered bastion: openssh, tcp, nothing planned on the bastion', async () => {
    const p = await plan('devbox');
    expect(p.route).toEqual(['i-0abc123', 'devbox']);
    expect(p.sshClient).toBe('openssh');
    expect(p.transport.kind).toBe('tcp');
    expect(p.steps.filter((s) => s.host === 'i-0abc123').map((s) => s.kind)).toEqual(['connect']);
  });

  it('tries UDP first (auto) when the brokered hop has an address this machine resolves', async () => {
    const p = await plan('db.example.org');
    expect(p.transport).toEqual({
      kind: 'auto',
      why: 'chosen by itself: db.example.org is reached through a ProxyCommand, but its address db.example.org resolves here, so UDP is tried first',
    });
    // And an explicit udp is honoured there: UDP goes straight to the host, as in the article.
    expect((await plan('db.example.org', { transport: 'udp' })).transport).toEqual({
      kind: 'udp',
      why: '--transport',
    });
  });

  it('binds mosh-server to every address when the target itself is reached through a ProxyCommand', async () => {
    // ssh comes in from the broker there (often on the loopback), not the way mosh-client sends.
    const server = (await plan('db.example.org', { transport: 'udp' })).steps.find(
      (s) => s.kind === 'server',
    );
    expect(server?.kind === 'server' && server.bind).toEqual({
      mode: 'any',
      why: 'every IPv4 address: ssh comes in to db.example.org through a ProxyCommand, not where mosh-client sends (mosh.bind_server: ssh)',
    });
    // Behind a brokered hop, the hop before connects as usual: -s is where its relay sends.
    const behind = (
      await plan(
        'devbox',
        { transport: 'udp' },
        undefined,
        context({ resolves: () => Promise.resolve(true) }),
      )
    ).steps.find((s) => s.kind === 'server');
    expect(behind?.kind === 'server' && behind.bind.mode).toBe('ssh');
  });

  it('takes --transport tcp and auto (auto is tcp when there is no address for UDP)', async () => {
    expect((await plan('i-0abc123', { transport: 'tcp' })).transport).toEqual({
      kind: 'tcp',
      why: '--transport',
    });
    const auto = await plan('i-0abc123', { transport: 'auto' });
    expect(auto.transport.kind).toBe('tcp');
    expect(auto.transport.why).toMatch(
      /^--transport, but i-0abc123 is reached through a ProxyCommand and i-0abc123 does not resolve here: tcp$/,
    );
  });

  it('refuses --transport udp (and a file that sets udp) at once, saying why and what to use', async () => {
    const err = await plan('i-0abc123', { transport: 'udp' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain(
      `--transport cannot carry the session to "i-0abc123": i-0abc123 is reached through a ProxyCommand (${BROKER}), and mosh's UDP cannot follow a ProxyCommand`,
    );
    expect((err as UserError).problems[0]?.hint).toContain('use --transport tcp');
    const fromFile = await plan('i-0abc123', {}, 'version: 1\nmosh:\n  transport: udp\n').catch(
      (e: unknown) => e,
    );
    expect((fromFile as UserError).message).toMatch(
      /mosh\.transport: udp, set at \S*moshproxy\.yaml:3 cannot carry/,
    );
  });

  it('refuses --no-connect, which cannot hand over a tcp session, naming the broker', async () => {
    const err = await plan('i-0abc123', { noConnect: true }).catch((e: unknown) => e);
    expect((err as UserError).problems[0]?.hint).toBe(
      'i-0abc123 is reached through a ProxyCommand, so only tcp can carry this session: run moshctl up without --no-connect',
    );
  });

  it("ignores an inner hop's own ProxyCommand: the chain reaches it, as ssh -J does", async () => {
    const config = await resolveRoute(loaded(), 'deep', context());
    expect(config.hosts.inner).toMatchObject({
      proxy_command: undefined,
      ssh_client: 'ssh2',
      sources: { proxy_command: 'not used: reached through plain, as with ssh -J' },
    });
    const p = planUp(config, 'deep');
    expect(p.sshClient).toBe('ssh2');
    expect(p.transport.kind).toBe('udp');
  });
});

describe('the ssh client, when nothing names one', () => {
  it('is ssh2 for a route that needs nothing more', async () => {
    const p = await plan('plain');
    expect(p.sshClient).toBe('ssh2');
    expect(p.sshClientWhy).toBe('the built-in client: nothing on the route needs more');
  });

  it('is openssh for a user certificate, a host CA or a FIDO key, naming what needs it', async () => {
    expect((await plan('carded')).sshClientWhy).toBe(
      'chosen by itself: carded needs an OpenSSH user certificate (/home/me/.ssh/id_ed25519-cert.pub), which the built-in ssh2 cannot do',
    );
    files['/home/me/.ssh/known_hosts'] =
      '@cert-authority *.ca.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE\n';
    try {
      expect((await plan('host.ca.example.org')).sshClientWhy).toContain(
        'host.ca.example.org needs a host certificate: its key is known only through an @cert-authority line',
      );
    } finally {
      delete files['/home/me/.ssh/known_hosts'];
    }
    files['/home/me/.ssh/sk'] = skKey();
    try {
      const p = await plan('sk.example.org', {}, undefined, {
        ...context(),
        sshG: (name) => Promise.resolve(g(name, { identityfile: '/home/me/.ssh/sk' })),
      });
      expect(p.sshClient).toBe('openssh');
      expect(p.sshClientWhy).toContain('sk.example.org needs a FIDO security key (/home/me/.ssh/sk)');
    } finally {
      delete files['/home/me/.ssh/sk'];
    }
  });

  it('stays ssh2 where a file names it (the connect step then refuses), and says where', async () => {
    const yaml = 'version: 1\ndefaults:\n  ssh_client: ssh2\n';
    const p = await plan('carded', {}, yaml);
    expect(p.sshClient).toBe('ssh2');
    expect(p.sshClientWhy).toMatch(/^ssh_client: ssh2 for carded \(\S*moshproxy\.yaml:3\)$/);
  });

  it('stays ssh2 without ssh installed, and says so', async () => {
    const config = await resolveRoute(
      loaded('version: 1\nhosts:\n  box: {address: box.example.org}\n'),
      'box',
      context({ sshG: undefined, ssh2Needs: () => Promise.resolve({ what: 'a test need' }) }),
    );
    expect(config.hosts.box?.ssh_client).toBe('ssh2');
    expect(planUp(config, 'box').sshClientWhy).toBe(
      'the built-in client, the default (box needs a test need, which the built-in ssh2 cannot do, and ssh is not installed)',
    );
  });

  it('is one client for the whole route: the brokered bastion makes the host behind it openssh too', async () => {
    const config = await resolveRoute(loaded(), 'devbox', context());
    expect(Object.values(config.hosts).map((h) => [h.name, h.ssh_client, h.sources.ssh_client])).toEqual([
      [
        'i-0abc123',
        'openssh',
        `chosen: i-0abc123 needs a ProxyCommand (${BROKER}), which the built-in ssh2 cannot do`,
      ],
      [
        'devbox',
        'openssh',
        `chosen: i-0abc123 needs a ProxyCommand (${BROKER}), which the built-in ssh2 cannot do`,
      ],
    ]);
  });
});

/** An OpenSSH private key file whose public key is an sk-ssh-ed25519 key (all the type check reads). */
function skKey(): string {
  const field = (s: string | Buffer): Buffer => {
    const b = typeof s === 'string' ? Buffer.from(s) : s;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const pub = field(Buffer.concat([field('sk-ssh-ed25519@openssh.com'), field(Buffer.alloc(32))]));
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    field('none'),
    field('none'),
    field(''),
    Buffer.from([0, 0, 0, 1]),
    pub,
  ]);
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${blob.toString('base64')}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

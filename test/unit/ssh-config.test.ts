// Hosts as OpenSSH resolves them: `ssh -G` output parsed, ProxyJump chains
// followed, moshproxy.yaml over ssh_config over OpenSSH's defaults. `ssh -G`
// is faked here with the text a real one prints; the e2e tests run the real one.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveAll, resolveRoute, type HostsContext } from '../../src/config/hosts.js';
import { loadConfig } from '../../src/config/load.js';
import { expandSshPath, parseProxyJump, parseSshG } from '../../src/config/ssh-config.js';
import { UserError } from '../../src/errors.js';
import { tempTree } from './helpers.js';

const local = { name: 'me', home: '/home/me', uid: 1000 };

/** What `ssh -G NAME` prints for a name no Host block matches (OpenSSH 9.2, trimmed). */
function plainG(name: string, over: Record<string, string | string[]> = {}): string {
  const base: Record<string, string | string[]> = {
    user: 'me',
    hostname: name,
    port: '22',
    hashknownhosts: 'yes',
    stricthostkeychecking: 'ask',
    serveraliveinterval: '0',
    connecttimeout: 'none',
    identityfile: ['rsa', 'ecdsa', 'ecdsa_sk', 'ed25519', 'ed25519_sk', 'xmss', 'dsa'].map(
      (k) => `~/.ssh/id_${k}`,
    ),
    userknownhostsfile: '/home/me/.ssh/known_hosts /home/me/.ssh/known_hosts2',
    globalknownhostsfile: '/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2',
    ...over,
  };
  return Object.entries(base)
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k} ${x}`) : [`${k} ${v}`]))
    .join('\n');
}

function context(entries: Record<string, string>, files: string[] = []): HostsContext & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    local,
    exists: (p) => files.includes(p),
    sshConfigLabel: '~/.ssh/config',
    resolves: (n) => Promise.resolve(n.endsWith('.example.org')),
    sshG: (name, opts) => {
      calls.push(`${opts.user ? `${opts.user}@` : ''}${name}${opts.port ? `:${opts.port}` : ''}`);
      return Promise.resolve(entries[name] ?? plainG(name, opts.user ? { user: opts.user } : {}));
    },
  };
}

function loaded(yaml: string) {
  const dir = tempTree({ 'moshproxy.yaml': yaml });
  return loadConfig([join(dir, 'moshproxy.yaml')], { HOME: '/home/me' });
}

const team = `version: 1
hosts:
  bastion: {address: bastion.example.org}
  box: {address: 10.0.3.12, via: [bastion], user: ops}
`;

describe('ssh -G output', () => {
  it('keeps repeated keys in order, splits known_hosts lists and drops "none"', () => {
    const g = parseSshG(
      [
        'hostname jump.example.org',
        'port 2222',
        'identityfile ~/.ssh/work_%u',
        'identityfile ~/.ssh/other',
        'userknownhostsfile ~/a "/b c"',
        'proxyjump none',
        'connecttimeout 7',
      ].join('\n'),
    );
    expect(g).toMatchObject({
      hostname: 'jump.example.org',
      port: 2222,
      identityfile: ['~/.ssh/work_%u', '~/.ssh/other'],
      userknownhostsfile: ['~/a', '/b c'],
      connecttimeout: 7,
    });
    expect(g.proxyjump).toBeUndefined();
  });

  it('expands ~ from the passwd home and the % tokens ssh leaves unexpanded', () => {
    const ctx = { local, host: 'h.example', user: 'ops', port: 2222, original: 'h' };
    expect(expandSshPath('~/.ssh/id_%u_%r@%h:%p', ctx)).toBe('/home/me/.ssh/id_me_ops@h.example:2222');
    expect(expandSshPath('%d/k%%', ctx)).toBe('/home/me/k%');
    expect(expandSshPath('rel/key', ctx)).toBe('/home/me/rel/key');
  });

  it.each([
    ['a', [{ host: 'a', text: 'a' }]],
    [
      'alice@a:2200,b',
      [
        { host: 'a', user: 'alice', port: 2200, text: 'alice@a:2200' },
        { host: 'b', text: 'b' },
      ],
    ],
    [
      'ssh://bob@[2001:db8::1]:22',
      [{ host: '2001:db8::1', user: 'bob', port: 22, text: 'ssh://bob@[2001:db8::1]:22' }],
    ],
  ])('parses ProxyJump %s', (text, want) => {
    expect(parseProxyJump(text)).toEqual(want);
  });

  it.each(['a,,b', 'a:99999', 'a b'])('refuses ProxyJump %j', (text) => {
    expect(parseProxyJump(text)).toHaveProperty('error');
  });
});

describe('hosts from ssh_config', () => {
  it('resolves a host only ssh_config knows, with a two-hop ProxyJump and the first jump reached through its own', async () => {
    const ctx = context({
      devbox: plainG('devbox', { hostname: '203.0.113.10', user: 'dev', proxyjump: 'inner,alice@edge:2200' }),
      inner: plainG('inner', { hostname: '198.51.100.2', proxyjump: 'outer' }),
      edge: plainG('edge', { hostname: '198.51.100.9', user: 'alice', port: '2200' }),
      outer: plainG('outer', { hostname: 'outer.example.org' }),
    });
    const c = await resolveRoute(loaded(team), 'devbox', ctx);
    expect(Object.keys(c.hosts)).toEqual(['outer', 'inner', 'alice@edge:2200', 'devbox']);
    expect(c.hosts.devbox).toMatchObject({
      origin: 'ssh_config',
      ssh_name: 'devbox',
      address: '203.0.113.10',
      user: 'dev',
      chain: ['outer', 'inner', 'alice@edge:2200'],
    });
    expect(c.hosts['alice@edge:2200']).toMatchObject({ address: '198.51.100.9', user: 'alice', port: 2200 });
    expect(c.hosts.inner?.chain).toEqual(['outer']);
    // One `ssh -G` per hop; the two jumps of one list in parallel.
    expect(ctx.calls.sort()).toEqual(['alice@edge:2200', 'devbox', 'inner', 'outer']);
  });

  it('gives a moshproxy.yaml host what it leaves unset from ssh_config (looked up by its address); moshproxy.yaml wins', async () => {
    const ctx = context({
      'bastion.example.org': plainG('bastion.example.org', {
        user: 'alice',
        identityfile: '~/.ssh/work',
        stricthostkeychecking: 'accept-new',
      }),
      '10.0.3.12': plainG('10.0.3.12', { user: 'ignored', port: '2022' }),
    });
    const c = await resolveRoute(loaded(team), 'box', ctx);
    expect(c.hosts.bastion).toMatchObject({
      user: 'alice',
      identity_files: ['/home/me/.ssh/work'],
      host_key_policy: 'accept-new',
      sources: { user: 'ssh_config', identity_files: 'ssh_config' },
    });
    expect(c.hosts.bastion?.sources.address).toMatch(/moshproxy\.yaml:3$/);
    expect(c.hosts.box).toMatchObject({ user: 'ops', port: 2022, sources: { port: 'ssh_config' } });
    expect(c.hosts.box?.sources.user).toMatch(/moshproxy\.yaml:4$/);
  });

  it("follows ssh_config's HostName for a moshproxy.yaml address, as `ssh ADDRESS` would", async () => {
    const ctx = context({ 'bastion.example.org': plainG('bastion.example.org', { hostname: '192.0.2.7' }) });
    const c = await resolveRoute(loaded(team), 'box', ctx);
    expect(c.hosts.bastion).toMatchObject({ address: '192.0.2.7', ssh_name: 'bastion.example.org' });
    expect(c.hosts.bastion?.sources.address).toBe('ssh_config');
    expect(c.hosts.box?.address).toBe('10.0.3.12');
  });

  it("uses OpenSSH's defaults where nothing names them: existing default keys only, both user known_hosts files", async () => {
    const ctx = context({}, [
      '/home/me/.ssh/id_ed25519',
      '/home/me/.ssh/id_rsa',
      '/home/me/.ssh/id_rsa-cert.pub',
    ]);
    const c = await resolveRoute(loaded(team), 'box', ctx);
    expect(c.hosts.bastion).toMatchObject({
      identity_files: ['/home/me/.ssh/id_rsa', '/home/me/.ssh/id_ed25519'],
      certificate_files: ['/home/me/.ssh/id_rsa-cert.pub'],
      known_hosts: ['/home/me/.ssh/known_hosts', '/home/me/.ssh/known_hosts2'],
      global_known_hosts: ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2'],
      host_key_policy: 'strict',
      connect_timeout: 10,
      server_alive_interval: 15,
      ssh_client: 'ssh2',
      sources: { identity_files: 'default', known_hosts: 'default' },
    });
  });

  it('works without ssh for moshproxy.yaml hosts, and names the missing ssh only when a name needs it', async () => {
    const l = loaded(team);
    const c = await resolveRoute(l, 'box', {
      local,
      sshG: undefined,
      sshConfigLabel: '~/.ssh/config',
      exists: () => false,
    });
    expect(c.hosts.box?.user).toBe('ops');
    const err = await resolveRoute(l, 'elsewhere', {
      local,
      sshG: undefined,
      sshConfigLabel: '~/.ssh/config',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain('ssh is not installed');
  });

  it('refuses a name in neither file, with a guess', async () => {
    const err = await resolveRoute(loaded(team), 'bastoin', context({})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toContain('unknown host "bastoin": not in');
    expect((err as UserError).problems[0]?.hint).toBe('did you mean "bastion"?');
  });

  it('takes a plain DNS name ssh_config does not mention, as ssh would', async () => {
    const c = await resolveRoute(loaded(team), 'ci.example.org', context({}));
    expect(c.hosts['ci.example.org']).toMatchObject({ address: 'ci.example.org', chain: [] });
  });

  it('refuses a ProxyJump cycle and a chain that mixes the two files', async () => {
    const cycle = context({
      a: plainG('a', { proxyjump: 'b' }),
      b: plainG('b', { proxyjump: 'a' }),
    });
    await expect(resolveRoute(loaded(team), 'a', cycle)).rejects.toThrow(
      /ProxyJump cycle in ~\/\.ssh\/config: a → b → a/,
    );
    const mixed = context({ c: plainG('c', { proxyjump: 'bastion' }) });
    await expect(resolveRoute(loaded(team), 'c', mixed)).rejects.toThrow(
      /also a host in .*moshproxy\.yaml: a chain cannot mix the two/,
    );
  });

  it("reports a broken ssh_config with the host and ssh's own file:line message", async () => {
    const ctx = context({});
    ctx.sshG = () =>
      Promise.reject(new Error('/home/me/.ssh/config line 3: Bad configuration option: fobar'));
    await expect(resolveRoute(loaded(team), 'box', ctx)).rejects.toThrow(
      /ssh_config could not be read for bastion .*line 3: Bad configuration option/,
    );
  });

  it('resolves every moshproxy.yaml host for config --resolved, each value with its source', async () => {
    const c = await resolveAll(loaded(team), context({}));
    expect(Object.keys(c.hosts)).toEqual(['bastion', 'box']);
    expect(c.hosts.box?.sources.user).toMatch(/moshproxy\.yaml:4$/);
    expect(c.hosts.box?.sources.port).toBe('default');
  });
});

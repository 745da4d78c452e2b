// Every example and the root moshproxy.yaml validate against the schema, and
// each example points editors at the schema.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';

const root = resolve(import.meta.dirname, '../..');
const examples = (function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
  );
})(join(root, 'examples'));

describe('checked-in config files', () => {
  it('has the examples the docs promise', () => {
    expect(examples.map((f) => relative(root, f)).sort()).toEqual([
      'examples/access-broker.yaml',
      'examples/direct.yaml',
      'examples/forwards.yaml',
      'examples/one-bastion.yaml',
      'examples/team/moshproxy.override.yaml',
      'examples/team/moshproxy.yaml',
      'examples/two-hop-chain.yaml',
    ]);
  });

  it.each([...examples, join(root, 'moshproxy.yaml')].map((f) => [relative(root, f), f]))(
    '%s validates, with USER unset',
    (_name, file) => {
      const files = file.endsWith('override.yaml') ? [join(dirname(file), 'moshproxy.yaml'), file] : [file];
      expect(() => loadConfig(files, {})).not.toThrow();
    },
  );

  it.each(examples.map((f) => [relative(root, f), f]))('%s points editors at the schema', (_name, file) => {
    const line = readFileSync(file, 'utf8').split('\n')[0] ?? '';
    const m = /^# yaml-language-server: \$schema=(.+)$/.exec(line);
    expect(m, 'first line should be the yaml-language-server schema comment').not.toBeNull();
    expect(resolve(dirname(file), m?.[1] ?? '')).toBe(join(root, 'schemas/moshproxy.schema.json'));
  });

  it('resolves the root file with defaults, the local user and expanded paths', () => {
    const { config } = loadConfig([join(root, 'moshproxy.yaml')], {});
    const dev = config.hosts['dev-box'];
    expect(dev?.chain).toEqual(['bastion']);
    expect(dev?.user).not.toBe('');
    expect(dev?.identity_files).toEqual([expect.stringMatching(/^\/.*\.ssh\/id_ed25519$/)]);
    expect(dev?.mosh).toEqual({
      server_ports: { from: 60000, to: 61000 },
      network_timeout: 86400,
      signal_timeout: 60,
      locale: 'C.UTF-8',
      session: 'none',
      transport: 'udp',
      bind_server: 'ssh',
      server: 'mosh-server',
      client: 'mosh-client',
      predict_overwrite: false,
      no_init: false,
    });
    expect(config.hosts.bastion?.relay).toEqual({ ports: { from: 60000, to: 60100 }, runtime: 'auto' });
  });

  it("expands the two-hop example through the first hop's own via", () => {
    const { config } = loadConfig([join(root, 'examples/two-hop-chain.yaml')], {});
    expect(config.hosts['gpu-box']?.chain).toEqual(['outer', 'inner']);
    expect(config.hosts['gpu-box']?.user).toBe('ops');
    expect(config.hosts['gpu-box']?.mosh.network_timeout).toBe(604800);
    expect(config.hosts['gpu-box']?.mosh.server_ports).toEqual({ from: 60000, to: 60050 });
  });
});

// The contract from the foundation issue, byte for byte: other issues and their tests rely on it.
const contract = `version: 1
defaults:                      # fields any host may override
  user: \${USER}
  identity_file: ~/.ssh/id_ed25519
  known_hosts: ~/.ssh/known_hosts
mosh:
  server_ports: 60000-61000    # mosh-server -p
  network_timeout: 86400       # MOSH_SERVER_NETWORK_TMOUT, seconds
  signal_timeout: 60           # MOSH_SERVER_SIGNAL_TMOUT, seconds
hosts:
  bastion:
    address: bastion.example.com
    port: 22
    relay:
      ports: 60000-60100       # where this proxy may listen for UDP
  dev-box:
    address: 10.0.3.12
    via: [bastion]             # ssh jump chain and UDP relay chain, client side first
`;

describe('the root moshproxy.yaml', () => {
  it('is the contract as written, after its comment header', () => {
    const text = readFileSync(join(root, 'moshproxy.yaml'), 'utf8');
    expect(text.replace(/^(#.*\n)+/, '')).toBe(contract);
  });
});

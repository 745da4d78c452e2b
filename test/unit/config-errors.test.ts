// What bad input gets: every problem in one run, each with file:line:column and a hint.
import { describe, expect, it } from 'vitest';
import { run, tempTree } from './helpers.js';

const validate = async (yaml: string, env?: Record<string, string>) => {
  const cwd = tempTree({ 'moshproxy.yaml': yaml });
  return run(['validate'], { cwd, ...(env ? { env } : {}) });
};

describe('moshctl validate on bad input', () => {
  it('lists every problem at once, in file order, and exits 2', async () => {
    const r = await validate(
      [
        'version: 1',
        'hosts:',
        '  a:',
        '    adress: x',
        '    via: [b, a]',
        '    port: 99999',
        '    user: "x;rm -rf ~"',
        '    relay: {ports: 70000-1}',
        '  b: {address: "-oProxyCommand=x", via: [c]}',
        '  c: {address: ok, via: [b], mosh: {network_timeout: -1, signal_timeout: 1.5, server_ports: 20-10}}',
        '  d: {address: "${NOPE:?set it}", via: [bastoin]}',
        '  "e;x": {address: y}',
        '  f: {address: "$(reboot)", identity_file: "~/k`id`"}',
        '  bastion: {address: z, port: "22"}',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatchInlineSnapshot(`
      "moshctl: 17 problems:
      <dir>/moshproxy.yaml:3:3: hosts.a needs "address"
        hint: a host needs at least "address:"
      <dir>/moshproxy.yaml:4:5: unknown key "adress" in hosts.a
        hint: did you mean "address"?
      <dir>/moshproxy.yaml:5:14: host "a" lists itself in via
        hint: remove "a" from its own via list
      <dir>/moshproxy.yaml:6:11: hosts.a.port must be <= 65535
        hint: an SSH port is a whole number from 1 to 65535
      <dir>/moshproxy.yaml:7:11: hosts.a.user: "x;rm -rf ~" is not allowed
        hint: a user name uses letters, digits, '.', '_' and '-' and does not start with '-' (nothing that a remote shell would interpret)
      <dir>/moshproxy.yaml:8:20: hosts.a.relay.ports: port 70000 is outside 1-65535
        hint: write a port like 60001 or a range like 60000-61000 (low-high, within 1-65535)
      <dir>/moshproxy.yaml:9:16: hosts.b.address: "-oProxyCommand=x" is not allowed
        hint: an address is a DNS name or an IP address: letters, digits, '.', ':' and '-', not starting with '-'
      <dir>/moshproxy.yaml:9:42: cycle in the jump chain: b → c → b
        hint: a host cannot be reached through itself; remove one of these via entries
      <dir>/moshproxy.yaml:10:54: hosts.c.mosh.network_timeout must be >= 1
        hint: a timeout is a whole number of seconds, from 1 to 604800 (a week)
      <dir>/moshproxy.yaml:10:74: hosts.c.mosh.signal_timeout must be a whole number, not the fraction 1.5
        hint: a timeout is a whole number of seconds, from 1 to 604800 (a week)
      <dir>/moshproxy.yaml:10:93: hosts.c.mosh.server_ports: the port range 20-10 is reversed
        hint: write 10-20
      <dir>/moshproxy.yaml:11:16: required variable NOPE is unset: set it
        hint: set NOPE in the environment (export NOPE=...) and run again
      <dir>/moshproxy.yaml:11:41: host "d": via names unknown host "bastoin"
        hint: did you mean "bastion"?
      <dir>/moshproxy.yaml:12:3: "e;x" is not a valid name in hosts
        hint: host names use letters, digits, '.', '_' and '-', and start with a letter or digit
      <dir>/moshproxy.yaml:13:16: a lone "$" in "$(reboot)"
        hint: write "$$" for a literal "$", or "\${NAME}" for a variable
      <dir>/moshproxy.yaml:13:44: hosts.f.identity_file: "~/k\`id\`" is not allowed
        hint: a path must not start with '-' nor contain ';', '$(', backticks or newlines
      <dir>/moshproxy.yaml:14:31: hosts.bastion.port must be a whole number, not string "22"
        hint: an SSH port is a whole number from 1 to 65535
      "
    `);
  });

  it('reports YAML syntax errors with their position', async () => {
    const r = await validate('version: 1\nhosts:\n  a: [\n');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^moshctl: <dir>\/moshproxy\.yaml:4:1: YAML syntax: /);
  });

  it("reports a host reached through itself by way of a hop's via", async () => {
    // x → a, and a is reached through b and then x: local → b → x → a → x.
    const r = await validate(
      'version: 1\nhosts:\n  x: {address: x, via: [a]}\n  a: {address: a, via: [b, x]}\n  b: {address: b}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('<dir>/moshproxy.yaml:3:25: host "x": its jump chain leads back to "x"');
  });

  it('reports a duplicate key', async () => {
    const r = await validate('version: 1\nhosts:\n  a: {address: x}\n  a: {address: y}\n');
    expect(r.stderr).toContain('<dir>/moshproxy.yaml:4:3: YAML syntax: Map keys must be unique');
  });

  it.each([
    ['server_ports: ""', 'mosh.server_ports: the port range is empty'],
    ['server_ports: 61000-60000', 'mosh.server_ports: the port range 61000-60000 is reversed'],
    ['server_ports: lots', 'mosh.server_ports: "lots" is not a port range'],
    ['server_ports: 0-100', 'mosh.server_ports: port 0 is outside 1-65535'],
    ['network_timeout: 1.5', 'mosh.network_timeout must be a whole number, not the fraction 1.5'],
    ['signal_timeout: -3', 'mosh.signal_timeout must be >= 1'],
    ['network_timeout: soon', 'mosh.network_timeout must be a whole number, not string "soon"'],
    ['locale: "C.UTF-8; id"', 'mosh.locale: "C.UTF-8; id" is not allowed'],
  ])('mosh %s', async (line, message) => {
    const r = await validate(`version: 1\nmosh:\n  ${line}\nhosts:\n  a: {address: x}\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`<dir>/moshproxy.yaml:3:`);
    expect(r.stderr).toContain(message);
  });

  it.each([
    ['user: "-oProxyCommand=x"', 'defaults.user: "-oProxyCommand=x" is not allowed'],
    ['user: "a\\nb"', 'defaults.user: "a\\nb" is not allowed'],
    ['user: "$$(id)"', 'defaults.user: "$(id)" is not allowed'],
    ['known_hosts: "-x"', 'defaults.known_hosts: "-x" is not allowed'],
    ['known_hosts: "a;b"', 'defaults.known_hosts: "a;b" is not allowed'],
    ['identity_file: "a\\nb"', 'defaults.identity_file: "a\\nb" is not allowed'],
    ['port: 0', 'defaults.port must be >= 1'],
    ['relay: {runtime: ruby}', 'defaults.relay.runtime: "ruby" is not supported'],
    ['usr: bob', 'unknown key "usr" in defaults'],
  ])('defaults %s', async (line, message) => {
    const r = await validate(`version: 1\ndefaults:\n  ${line}\nhosts:\n  a: {address: x}\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`<dir>/moshproxy.yaml:3:`);
    expect(r.stderr).toContain(message);
  });

  it('names the closest key for a typo at the top level', async () => {
    const r = await validate('version: 1\nhost:\n  a: {address: x}\n');
    expect(r.stderr).toContain(
      '<dir>/moshproxy.yaml:2:1: unknown key "host" in the file\n  hint: did you mean "hosts"?',
    );
    expect(r.code).toBe(2);
    // hosts: is optional (names may come from ssh_config), so only the typo is reported.
    expect(r.stderr).not.toContain('needs "hosts"');
  });

  it('rejects an unsupported version and an empty file', async () => {
    expect((await validate('version: 2\nhosts: {a: {address: x}}\n')).stderr).toContain(
      'version: 2 is not supported\n  hint: write "version: 1"',
    );
    expect((await validate('')).stderr).toContain('<dir>/moshproxy.yaml:1:1: the file is empty');
  });

  it('finds a cycle that does not pass through the host named', async () => {
    const r = await validate(
      'version: 1\nhosts:\n  a: {address: x, via: [b]}\n  b: {address: y, via: [a]}\n',
    );
    expect(r.stderr).toContain('<dir>/moshproxy.yaml:3:25: cycle in the jump chain: a → b → a');
    expect(r.stderr.match(/cycle/g)).toHaveLength(1);
  });

  it('rejects a hop that appears twice in a chain', async () => {
    const r = await validate(
      'version: 1\nhosts:\n  j: {address: j}\n  k: {address: k, via: [j]}\n  t: {address: t, via: [k, j]}\n',
    );
    expect(r.stderr).toContain('host "t": "j" appears twice in its jump chain');
  });

  it('turns an interpolated number in a plain scalar into a number', async () => {
    const ok = await validate('version: 1\nhosts:\n  a:\n    address: x\n    port: ${P:-2222}\n', {});
    expect(ok).toMatchObject({ code: 0, stdout: 'ok\n' });
    const quoted = await validate('version: 1\nhosts:\n  a:\n    address: x\n    port: "${P:-2222}"\n', {});
    expect(quoted.stderr).toContain('hosts.a.port must be a whole number, not string "2222"');
  });

  it('allows an IPv6 address behind a python3 or perl relay, and refuses it behind a socat or nc one', async () => {
    const ok = await validate(
      'version: 1\nhosts:\n  j: {address: "2001:db8::1"}\n  t: {address: "2001:db8::2", via: [j]}\n  d: {address: "::1"}\n',
    );
    expect(ok.code).toBe(0);
    const r = await validate(
      'version: 1\nhosts:\n  j: {address: "2001:db8::1", relay: {runtime: socat}}\n  t: {address: "2001:db8::2", via: [j]}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'moshctl: <dir>/moshproxy.yaml:4:16: host "t" has an IPv6 address, but the socat relay on "j" that forwards to it speaks IPv4 only\n  hint: use relay.runtime: auto on "j" (python3 or perl relays speak IPv6), or give "t" an IPv4 address or a DNS name with an A record\n',
    );
    const byDefault = await validate(
      'version: 1\ndefaults: {relay: {runtime: nc}}\nhosts:\n  j: {address: x}\n  t: {address: "::2", via: [j]}\n',
    );
    expect(byDefault.stderr).toContain('the nc relay on "j"');
  });

  it("caps timeouts at a week, the relays' limit", async () => {
    const r = await validate('version: 1\nmosh:\n  network_timeout: 604801\nhosts:\n  a: {address: x}\n');
    expect(r.stderr).toContain('mosh.network_timeout must be <= 604800');
    expect(
      (await validate('version: 1\nmosh:\n  network_timeout: 604800\nhosts:\n  a: {address: x}\n')).code,
    ).toBe(0);
  });

  it('takes ssh, any or an IP address for mosh.bind_server, and names the line of anything else', async () => {
    const ok = await validate(
      'version: 1\nmosh: {bind_server: any}\nhosts:\n  a: {address: x, mosh: {bind_server: "2001:db8::10"}}\n  b: {address: y, mosh: {bind_server: 203.0.113.10}}\n  c: {address: z, mosh: {bind_server: ssh}}\n',
    );
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const r = await validate(
      'version: 1\nmosh: {bind_server: 300.1.2.3}\nhosts:\n  a: {address: x, mosh: {bind_server: "; reboot"}}\n  b: {address: y, mosh: {bind_server: "::1::2"}}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatchInlineSnapshot(`
      "moshctl: 3 problems:
      <dir>/moshproxy.yaml:2:21: mosh.bind_server: "300.1.2.3" is neither ssh, any nor an IP address
        hint: use ssh (the address ssh came in on, the default), any, or an IPv4 or IPv6 address of the target such as 203.0.113.10 or 2001:db8::10
      <dir>/moshproxy.yaml:4:39: hosts.a.mosh.bind_server: "; reboot" is not allowed
        hint: use ssh (the address ssh came in on, the default), any, or an IPv4 or IPv6 address of the target such as 203.0.113.10 or 2001:db8::10
      <dir>/moshproxy.yaml:5:39: hosts.b.mosh.bind_server: "::1::2" is neither ssh, any nor an IP address
        hint: use ssh (the address ssh came in on, the default), any, or an IPv4 or IPv6 address of the target such as 203.0.113.10 or 2001:db8::10
      "
    `);
  });

  it("checks mosh's own options: a mosh.server path a shell cannot misread, that names a mosh-server; a known predict mode", async () => {
    const ok = await validate(
      'version: 1\nmosh: {server: "~/.local/bin/mosh-server", predict: always, predict_overwrite: true, no_init: true, client: "~/bin/mosh-client"}\nhosts:\n  a: {address: x, mosh: {server: "/Applications/My Tools/mosh-server"}}\n',
    );
    expect(ok.stderr).toBe('');
    const r = await validate(
      'version: 1\nmosh: {server: "mosh-server; reboot", predict: sometimes}\nhosts:\n  a: {address: x, mosh: {server: /usr/bin/moshd}}\n  b: {address: y, mosh: {server: "~root/mosh-server", no_init: yes please}}\n',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatchInlineSnapshot(`
      "moshctl: 5 problems:
      <dir>/moshproxy.yaml:2:16: mosh.server: "mosh-server; reboot" is not allowed
        hint: name mosh-server by its path on the target, e.g. /opt/homebrew/bin/mosh-server or ~/.local/bin/mosh-server (letters, digits, spaces and / . _ - + , : @ %; ~/ only at the start)
      <dir>/moshproxy.yaml:2:48: mosh.predict: "sometimes" is not supported
        hint: one of adaptive, always, never, experimental
      <dir>/moshproxy.yaml:4:34: hosts.a.mosh.server: "/usr/bin/moshd" does not name a mosh-server
        hint: the path must contain "mosh-server": moshctl recognizes the server it started by that word when it stops it by pid (a wrapper script can be called mosh-server)
      <dir>/moshproxy.yaml:5:34: hosts.b.mosh.server: "~root/mosh-server" is not allowed
        hint: name mosh-server by its path on the target, e.g. /opt/homebrew/bin/mosh-server or ~/.local/bin/mosh-server (letters, digits, spaces and / . _ - + , : @ %; ~/ only at the start)
      <dir>/moshproxy.yaml:5:64: hosts.b.mosh.no_init must be boolean, not string "yes please"
        hint: true or false
      "
    `);
  });
});

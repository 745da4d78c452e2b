// forward: and forward_agent: in moshproxy.yaml: the schema and the rules
// report each mistake at its line and column; resolving takes the host's
// own, else defaults', else ssh_config's (as `ssh -G` prints it, faked here
// with the text a real one prints), else none.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveRoute, type HostsContext } from '../../src/config/hosts.js';
import { loadConfig } from '../../src/config/load.js';
import { run, tempTree } from './helpers.js';

const validate = async (yaml: string) => run(['validate'], { cwd: tempTree({ 'moshproxy.yaml': yaml }) });

describe('forward: in moshproxy.yaml', () => {
  it('reports every bad forward at its line and column, with how to write it', async () => {
    const r = await validate(
      [
        'version: 1',
        'defaults:',
        '  forward: {local: ["8080:localhost"], exit_on_failure: "yes"}',
        'hosts:',
        '  web:',
        '    address: web.example.org',
        '    forward_agent: yes',
        '    forward:',
        '      local:',
        '        - 8080:localhost:80',
        '        - 127.0.0.1:8080:db:5432',
        '        - 8081:localhost:http',
        '      remote: [9093, "9094:rel/x.sock"]',
        '      dynamic: 1080',
        '      socks: [1081]',
        '  box: {address: box.example.org, forward: {dynamic: ["-D 1080", "0"]}}',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatchInlineSnapshot(`
      "moshctl: 11 problems:
      <dir>/moshproxy.yaml:3:21: defaults.forward.local[0]: "8080:localhost" is not a local forward: ssh takes [bind_address:]port:host:hostport, [bind_address:]port:remote_socket, local_socket:host:hostport or local_socket:remote_socket
        hint: e.g. 8080:localhost:80 (port 8080 here, to localhost:80 as the target reaches it)
      <dir>/moshproxy.yaml:3:57: defaults.forward.exit_on_failure must be boolean, not string "yes"
        hint: true or false
      <dir>/moshproxy.yaml:7:20: hosts.web.forward_agent must be boolean, not string "yes"
        hint: true or false
      <dir>/moshproxy.yaml:11:11: hosts.web.forward.local[1]: -L 127.0.0.1:8080:db:5432 listens where hosts.web.forward.local[0] (-L 8080:localhost:80) does
        hint: give one of them another port or path
      <dir>/moshproxy.yaml:12:11: hosts.web.forward.local[2]: "8081:localhost:http" has "http" where a port (1-65535) goes
        hint: write the port number: ssh also takes a service name such as http, moshctl does not
      <dir>/moshproxy.yaml:13:16: hosts.web.forward.remote[0]: "9093" is ssh's reverse SOCKS proxy (-R with a port alone), which moshctl does not do
        hint: name where connections go instead, e.g. 9090:localhost:3000; for a SOCKS proxy on the target, run one here and forward to it (9090:localhost:1080)
      <dir>/moshproxy.yaml:13:22: hosts.web.forward.remote[1]: "9094:rel/x.sock" has the socket path "rel/x.sock", which is not absolute
        hint: e.g. 9090:localhost:3000 (port 9090 on the target, to localhost:3000 here)
      <dir>/moshproxy.yaml:14:16: hosts.web.forward.dynamic must be a list, not the number 1080
        hint: write a list of forwards in ssh's form, e.g. [8080:localhost:80]
      <dir>/moshproxy.yaml:15:7: unknown key "socks" in hosts.web.forward
        hint: known keys here: local, remote, dynamic, exit_on_failure
      <dir>/moshproxy.yaml:16:55: hosts.box.forward.dynamic[0]: "-D 1080" starts with ssh's option
        hint: write the forward alone, without -D
      <dir>/moshproxy.yaml:16:66: hosts.box.forward.dynamic[1]: "0" listens on port 0, which ssh refuses here
        hint: port 0 (a port the target chooses) is for -R only; name a port from 1 to 65535
      "
    `);
  });

  it('takes every form, numbers for a port alone, and an empty list', async () => {
    const r = await validate(
      [
        'version: 1',
        'defaults: {forward_agent: false, forward: {dynamic: [1080]}}',
        'hosts:',
        '  web:',
        '    address: web.example.org',
        '    forward_agent: true',
        '    forward:',
        '      local: [8080:localhost:80, "[::1]:8081:[2001:db8::1]:80", "*:8082:db:5432", /tmp/l.sock:/run/r.sock]',
        '      remote: [0:localhost:3000, "/run/user/1000/r.sock:localhost:22"]',
        '      dynamic: [127.0.0.1:1080]',
        '      exit_on_failure: true',
        '  box: {address: box.example.org, forward: {local: []}}',
        '',
      ].join('\n'),
    );
    expect(r).toMatchObject({ code: 0, stdout: 'ok\n' });
  });
});

/** What `ssh -G` prints for forwarding, in its order (OpenSSH 9.2), among the rest. */
function g(name: string, lines: string[] = []): string {
  const agent = lines.some((l) => l.startsWith('forwardagent ')) ? [] : ['forwardagent no'];
  return [`hostname ${name}`, 'user me', 'port 22', 'clearallforwardings no', ...lines, ...agent].join('\n');
}

function context(entries: Record<string, string>): HostsContext {
  return {
    local: { name: 'me', home: '/home/me', uid: 1000 },
    exists: () => false,
    sshConfigLabel: '~/.ssh/config',
    resolves: () => Promise.resolve(true),
    sshG: (name) => Promise.resolve(entries[name] ?? g(name)),
  };
}

function loaded(yaml: string) {
  const dir = tempTree({ 'moshproxy.yaml': yaml });
  return loadConfig([join(dir, 'moshproxy.yaml')], { HOME: '/home/me' });
}

describe('a host’s forwarding, resolved', () => {
  const sshConfig = context({
    'web.example.org': g('web.example.org', [
      'exitonforwardfailure yes',
      'localforward 5432 [db]:5432',
      'forwardagent yes',
    ]),
    'box.example.org': g('box.example.org', [
      'gatewayports yes',
      'dynamicforward 1080',
      'forwardagent /tmp/a.sock',
    ]),
    devbox: g('10.0.0.7', ['localforward 8080 [localhost]:80', 'remoteforward 9093 [socks]:0']),
    cleared: ['hostname cleared', 'clearallforwardings yes', 'gatewayports no', 'forwardagent no'].join('\n'),
  });

  it("takes ssh_config's forwards, ForwardAgent and ExitOnForwardFailure where the file says nothing", async () => {
    const c = await resolveRoute(
      loaded('version: 1\nhosts:\n  web: {address: web.example.org}\n'),
      'web',
      sshConfig,
    );
    expect(c.hosts.web).toMatchObject({
      forwards: [{ kind: 'local', text: '-L 5432:db:5432', source: 'ssh_config' }],
      forward_agent: true,
      exit_on_forward_failure: true,
      gateway_ports: false,
      forward_notes: [],
      sources: { forwards: 'ssh_config', forward_agent: 'ssh_config', exit_on_forward_failure: 'ssh_config' },
    });
  });

  it("uses the host's own forward: (or defaults') instead, whole, and forward_agent over ForwardAgent", async () => {
    const yaml = [
      'version: 1',
      'defaults: {forward: {dynamic: [1081], exit_on_failure: false}}',
      'hosts:',
      '  web:',
      '    address: web.example.org',
      '    forward_agent: false',
      '    forward: {remote: ["9090:localhost:3000"]}',
      '  box: {address: box.example.org}',
      '',
    ].join('\n');
    const web = (await resolveRoute(loaded(yaml), 'web', sshConfig)).hosts.web;
    expect(web?.forwards.map((f) => [f.text, f.source.replace(/^.*\//, '')])).toEqual([
      ['-R 9090:localhost:3000', 'moshproxy.yaml:7'],
    ]);
    expect(web).toMatchObject({ forward_agent: false, exit_on_forward_failure: false });
    expect(web?.sources.forwards).toMatch(/moshproxy\.yaml:7$/);
    expect(web?.sources.forward_agent).toMatch(/moshproxy\.yaml:6$/);
    expect(web?.sources.exit_on_forward_failure).toMatch(/moshproxy\.yaml:2$/);
    // defaults' lists, read with box's GatewayPorts; ForwardAgent with a path counts as yes.
    const box = (await resolveRoute(loaded(yaml), 'box', sshConfig)).hosts.box;
    expect(box?.forwards.map((f) => f.text)).toEqual(['-D *:1081']);
    expect(box).toMatchObject({
      forward_agent: true,
      gateway_ports: true,
      sources: { forward_agent: 'ssh_config' },
    });
  });

  it('resolves a host only ssh_config knows the same way, with a note for what moshctl leaves out', async () => {
    const c = await resolveRoute(loaded('version: 1\n'), 'devbox', sshConfig);
    expect(c.hosts.devbox).toMatchObject({
      forwards: [{ text: '-L 8080:localhost:80', source: 'ssh_config' }],
      forward_notes: [
        "ssh_config's RemoteForward 9093 is left out: ssh's reverse SOCKS proxy (RemoteForward with a port alone) is not done by moshctl",
      ],
    });
  });

  it('drops ssh_config forwards under ClearAllForwardings yes, and says so', async () => {
    const c = await resolveRoute(loaded('version: 1\n'), 'cleared', sshConfig);
    expect(c.hosts.cleared).toMatchObject({
      forwards: [],
      forward_agent: false,
      sources: { forwards: 'ssh_config (ClearAllForwardings yes)', forward_agent: 'default' },
    });
  });

  it('has none without a file or ssh_config saying so', async () => {
    const c = await resolveRoute(
      loaded('version: 1\nhosts:\n  x: {address: x.example.org}\n'),
      'x',
      context({}),
    );
    expect(c.hosts.x).toMatchObject({
      forwards: [],
      forward_agent: false,
      exit_on_forward_failure: false,
      sources: { forwards: 'default', forward_agent: 'default', exit_on_forward_failure: 'default' },
    });
  });
});

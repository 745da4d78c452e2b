// ssh's forward syntax, every form `man ssh` gives for -L, -R and -D, and the
// ssh_config forms as `ssh -G` (OpenSSH 9.2) prints them. The -G text below
// is what a real `ssh -G` printed for a config with those lines.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sshGForwards } from '../../src/config/forwards.js';
import { parseSshG } from '../../src/config/ssh-config.js';
import { forwardArg, listenersClash, listensOnLoopback, parseForward } from '../../src/forward/spec.js';
import type { ForwardKind, ForwardSpec } from '../../src/forward/types.js';

function spec(kind: ForwardKind, text: string, gatewayPorts = false): ForwardSpec {
  const r = parseForward(kind, text, 'command line', { gatewayPorts });
  if (!r.ok) throw new Error(`${text}: ${r.message}`);
  return r.spec;
}

function problem(kind: ForwardKind, text: string): string {
  const r = parseForward(kind, text, 'command line');
  if (r.ok) throw new Error(`${text} was taken: ${r.spec.text}`);
  return `${r.message}\n  hint: ${r.hint}`;
}

/** The spec without its source, as [listen, to, text]. */
const shape = (s: ForwardSpec): unknown[] => [s.listen, s.to, s.text];

describe('parseForward: -L', () => {
  it.each([
    // [bind_address:]port:host:hostport
    ['8080:localhost:80', { port: 8080 }, { host: 'localhost', port: 80 }, '-L 8080:localhost:80'],
    ['localhost:8080:localhost:80', { port: 8080 }, { host: 'localhost', port: 80 }, '-L 8080:localhost:80'],
    [
      '127.0.0.1:8081:[2001:db8::1]:443',
      { host: '127.0.0.1', port: 8081 },
      { host: '2001:db8::1', port: 443 },
      '-L 127.0.0.1:8081:[2001:db8::1]:443',
    ],
    [
      '[::1]:8082:web.example.org:80',
      { host: '::1', port: 8082 },
      { host: 'web.example.org', port: 80 },
      '-L [::1]:8082:web.example.org:80',
    ],
    [
      '*:8083:localhost:80',
      { host: '*', port: 8083 },
      { host: 'localhost', port: 80 },
      '-L *:8083:localhost:80',
    ],
    [
      ':8084:localhost:80',
      { host: '*', port: 8084 },
      { host: 'localhost', port: 80 },
      '-L *:8084:localhost:80',
    ],
    ['8080:db_1:5432', { port: 8080 }, { host: 'db_1', port: 5432 }, '-L 8080:db_1:5432'],
    // A backslash escapes a colon, as in ssh.
    ['8002:fe80\\:\\:1:80', { port: 8002 }, { host: 'fe80::1', port: 80 }, '-L 8002:[fe80::1]:80'],
    // [bind_address:]port:remote_socket
    ['8085:/run/remote.sock', { port: 8085 }, { path: '/run/remote.sock' }, '-L 8085:/run/remote.sock'],
    [
      '127.0.0.1:8086:/run/remote.sock',
      { host: '127.0.0.1', port: 8086 },
      { path: '/run/remote.sock' },
      '-L 127.0.0.1:8086:/run/remote.sock',
    ],
    // local_socket:host:hostport
    [
      '/tmp/l.sock:localhost:22',
      { path: '/tmp/l.sock' },
      { host: 'localhost', port: 22 },
      '-L /tmp/l.sock:localhost:22',
    ],
    // local_socket:remote_socket
    [
      '/tmp/l.sock:/run/r.sock',
      { path: '/tmp/l.sock' },
      { path: '/run/r.sock' },
      '-L /tmp/l.sock:/run/r.sock',
    ],
    // A path with a colon, in brackets.
    [
      '[/tmp/a:b.sock]:localhost:80',
      { path: '/tmp/a:b.sock' },
      { host: 'localhost', port: 80 },
      '-L [/tmp/a:b.sock]:localhost:80',
    ],
  ])('%s', (text, listen, to, canonical) => {
    expect(shape(spec('local', text))).toEqual([listen, to, canonical]);
    expect(spec('local', text).source).toBe('command line');
  });

  it('with GatewayPorts yes, listens on every interface without a bind address, and only then', () => {
    expect(shape(spec('local', '8080:localhost:80', true))).toEqual([
      { host: '*', port: 8080 },
      { host: 'localhost', port: 80 },
      '-L *:8080:localhost:80',
    ]);
    // An explicit localhost stays loopback, and its text says so, for ssh to read back the same.
    expect(shape(spec('local', 'localhost:8080:localhost:80', true))).toEqual([
      { port: 8080 },
      { host: 'localhost', port: 80 },
      '-L localhost:8080:localhost:80',
    ]);
    expect(spec('remote', '9090:localhost:3000', true).listen).toEqual({ port: 9090 });
  });
});

describe('parseForward: -R', () => {
  it.each([
    ['9090:localhost:3000', { port: 9090 }, { host: 'localhost', port: 3000 }, '-R 9090:localhost:3000'],
    ['0:localhost:3001', { port: 0 }, { host: 'localhost', port: 3001 }, '-R 0:localhost:3001'],
    [
      '*:9091:[2001:db8::2]:3000',
      { host: '*', port: 9091 },
      { host: '2001:db8::2', port: 3000 },
      '-R *:9091:[2001:db8::2]:3000',
    ],
    [
      'localhost:9094:127.0.0.1:3000',
      { port: 9094 },
      { host: '127.0.0.1', port: 3000 },
      '-R 9094:127.0.0.1:3000',
    ],
    // [bind_address:]port:local_socket, remote_socket:host:hostport, remote_socket:local_socket
    ['9092:/tmp/l.sock', { port: 9092 }, { path: '/tmp/l.sock' }, '-R 9092:/tmp/l.sock'],
    [
      '/tmp/r2.sock:localhost:22',
      { path: '/tmp/r2.sock' },
      { host: 'localhost', port: 22 },
      '-R /tmp/r2.sock:localhost:22',
    ],
    [
      '/run/user/1000/r.sock:/tmp/l.sock',
      { path: '/run/user/1000/r.sock' },
      { path: '/tmp/l.sock' },
      '-R /run/user/1000/r.sock:/tmp/l.sock',
    ],
  ])('%s', (text, listen, to, canonical) => {
    expect(shape(spec('remote', text))).toEqual([listen, to, canonical]);
  });
});

describe('parseForward: -D', () => {
  it.each([
    ['1080', { port: 1080 }, '-D 1080'],
    ['127.0.0.1:1081', { host: '127.0.0.1', port: 1081 }, '-D 127.0.0.1:1081'],
    ['[::1]:1082', { host: '::1', port: 1082 }, '-D [::1]:1082'],
    ['*:1083', { host: '*', port: 1083 }, '-D *:1083'],
    ['localhost:1084', { port: 1084 }, '-D 1084'],
    [':1085', { host: '*', port: 1085 }, '-D *:1085'],
  ])('%s', (text, listen, canonical) => {
    expect(shape(spec('dynamic', text))).toEqual([listen, undefined, canonical]);
  });

  it('listens on every interface with GatewayPorts yes', () => {
    expect(spec('dynamic', '1080', true).listen).toEqual({ host: '*', port: 1080 });
  });
});

describe('parseForward refuses, saying why and how to write it', () => {
  it.each([
    ['local', '8080:localhost', 'is not a local forward: ssh takes [bind_address:]port:host:hostport'],
    ['local', '0:localhost:80', 'listens on port 0, which ssh refuses here'],
    ['dynamic', '0', 'listens on port 0, which ssh refuses here'],
    ['local', '8080:localhost:0', 'has "0" where a port (1-65535) goes'],
    ['local', '70000:localhost:80', 'has "70000" where a port (1-65535) goes'],
    // A trailing ':' ends the fields, as in ssh: two fields, no path.
    ['local', '8080:localhost:', 'is not a local forward'],
    ['local', '8080::80', 'has "", which is neither a host name nor an IP address'],
    ['local', 'dir/l.sock:localhost:80', 'has the socket path "dir/l.sock", which is not absolute'],
    ['remote', '9090:rel/l.sock', 'has the socket path "rel/l.sock", which is not absolute'],
    ['local', '8080:a;b:80', 'has "a;b", which is neither a host name nor an IP address'],
    ['local', '8080:$(id):80', 'has "$(id)", which is neither a host name nor an IP address'],
    ['local', '`id`:8080:x:80', 'has "`id`", which is neither a host name nor an IP address'],
    ['local', '8080:-oProxyCommand=x:80', 'has "-oProxyCommand=x", which is neither'],
    ['local', '8080:localhost:80\n', 'holds a control character'],
    ['local', '', 'is empty'],
    ['local', '[::1:8080:x:80', 'is not a local forward'],
    ['local', '1:2:3:4:5', 'is not a local forward'],
    ['dynamic', '/tmp/s.sock', 'is not a dynamic forward: ssh takes [bind_address:]port'],
    ['dynamic', '1080:localhost:80', 'is not a dynamic forward'],
    ['local', `/${'x'.repeat(107)}:localhost:80`, 'longer than 107 bytes'],
  ] as const)('%s %j', (kind, text, message) => {
    expect(problem(kind, text)).toContain(message);
  });

  it('names the fix where it is known', () => {
    expect(problem('local', '8080:localhost:http')).toContain(
      'hint: write the port number: ssh also takes a service name such as http, moshctl does not',
    );
    expect(problem('local', '8080:2001:db8::1:80')).toContain(
      'hint: an IPv6 address goes in brackets, e.g. [2001:db8::1]:80',
    );
    expect(problem('local', '-L 8080:localhost:80')).toBe(
      '"-L 8080:localhost:80" starts with ssh\'s option\n  hint: write the forward alone, without -L',
    );
    // The IPv6 form of OpenSSH before 6.7, when "/" was the other separator.
    expect(problem('local', '8080/2001:db8::1/80')).toBe(
      '"8080/2001:db8::1/80" uses the "/" separator that OpenSSH dropped in 6.7 (a "/" now marks a socket path)\n  hint: write 8080:[2001:db8::1]:80: ":" between the fields, an IPv6 address in brackets',
    );
  });

  it("refuses ssh's reverse SOCKS (-R with a port alone), saying it is not supported", () => {
    for (const text of ['9093', '*:9093', 'localhost:9093']) {
      expect(problem('remote', text)).toContain(
        "is ssh's reverse SOCKS proxy (-R with a port alone), which moshctl does not do",
      );
    }
  });
});

describe('the text of a spec', () => {
  const host = fc.oneof(
    fc.constantFrom('localhost', 'web.example.org', 'db_1', '192.0.2.7', '2001:db8::1', '::1', '*', ''),
  );
  const port = fc.integer({ min: 1, max: 65535 });
  const path = fc.constantFrom('/tmp/l.sock', '/run/user/1000/a b.sock', '/tmp/a:b.sock');
  const endpoint = fc.oneof(
    fc
      .tuple(
        host.filter((h) => h !== '*' && h !== ''),
        port,
      )
      .map(([h, p]) => (h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`)),
    path.map((p) => (p.includes(':') ? `[${p}]` : p)),
  );
  const listener = fc.oneof(
    port.map(String),
    fc.tuple(host, port).map(([h, p]) => (h.includes(':') ? `[${h}]:${p}` : `${h}:${p}`)),
    path.map((p) => (p.includes(':') ? `[${p}]` : p)),
  );

  it('reads back as the same spec, with or without GatewayPorts', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<ForwardKind>('local', 'remote', 'dynamic'),
        listener,
        endpoint,
        fc.boolean(),
        (kind, l, to, gatewayPorts) => {
          const r = parseForward(kind, kind === 'dynamic' ? l : `${l}:${to}`, 'x', { gatewayPorts });
          if (!r.ok) return; // a dynamic forward on a path, for one
          const again = parseForward(kind, r.spec.text.slice(3), 'x', { gatewayPorts });
          expect(again).toEqual(r);
          expect(forwardArg(r.spec, { gatewayPorts })).toBe(r.spec.text.slice(3));
        },
      ),
    );
  });
});

describe('listeners', () => {
  it('clash on the same port where the addresses overlap, or the same path, on the same side', () => {
    const clash = (a: [ForwardKind, string], b: [ForwardKind, string]): boolean =>
      listenersClash(spec(...a), spec(...b));
    expect(clash(['local', '8080:a:80'], ['dynamic', '8080'])).toBe(true);
    expect(clash(['local', '8080:a:80'], ['local', '127.0.0.1:8080:b:80'])).toBe(true);
    expect(clash(['local', '*:8080:a:80'], ['local', '192.0.2.1:8080:b:80'])).toBe(true);
    expect(clash(['local', '127.0.0.1:8080:a:80'], ['local', '[::1]:8080:b:80'])).toBe(false);
    expect(clash(['local', '192.0.2.1:8080:a:80'], ['local', '8080:b:80'])).toBe(false);
    expect(clash(['local', '8080:a:80'], ['local', '8081:a:80'])).toBe(false);
    expect(clash(['local', '/tmp/l.sock:a:80'], ['local', '/tmp/l.sock:b:80'])).toBe(true);
    // -R listens on the target, -L here.
    expect(clash(['local', '8080:a:80'], ['remote', '8080:a:80'])).toBe(false);
    expect(clash(['remote', '8080:a:80'], ['remote', '8080:b:80'])).toBe(true);
    expect(clash(['remote', '0:a:80'], ['remote', '0:b:80'])).toBe(false);
  });

  it('are loopback without a bind address, on 127.x and ::1, and on a socket path', () => {
    expect(
      ['8080:a:80', '127.0.0.2:8080:a:80', '[::1]:8080:a:80', '/tmp/l.sock:a:80'].map((t) =>
        listensOnLoopback(spec('local', t)),
      ),
    ).toEqual([true, true, true, true]);
    expect(
      ['*:8080:a:80', '0.0.0.0:8080:a:80', '192.0.2.1:8080:a:80'].map((t) =>
        listensOnLoopback(spec('local', t)),
      ),
    ).toEqual([false, false, false]);
  });
});

/** What OpenSSH 9.2's `ssh -G` printed for a Host block with every form (see the top of this file). */
const printed = `clearallforwardings no
exitonforwardfailure yes
gatewayports no
dynamicforward /tmp/local.sock
dynamicforward 8085
dynamicforward 1080
dynamicforward [127.0.0.1]:1081
dynamicforward [::1]:1082
dynamicforward [*]:1083
dynamicforward [localhost]:1084
localforward 8080 [localhost]:80
localforward [127.0.0.1]:8081 [2001:db8::1]:443
localforward [::1]:8082 [web.example.org]:80
localforward [*]:8083 [localhost]:80
localforward []:8084 [localhost]:80
localforward /tmp/local.sock /run/remote.sock
localforward 8085 /run/remote.sock
localforward /tmp/l2.sock [localhost]:22
localforward /tmp/a:b.sock [localhost]:80
remoteforward 9090 [localhost]:3000
remoteforward 0 [localhost]:3001
remoteforward [*]:9091 [2001:db8::2]:3000
remoteforward /run/user/1000/r.sock /tmp/l.sock
remoteforward 9092 /tmp/l.sock
remoteforward 9093 [socks]:0
remoteforward [localhost]:9094 [127.0.0.1]:3000
forwardagent yes
`;

describe('ssh_config forwards, as ssh -G prints them', () => {
  it('reads every form, drops the DynamicForward lines -G invents for socket forwards, and leaves out reverse SOCKS with a note', () => {
    const g = parseSshG(printed);
    expect(g).toMatchObject({ exitonforwardfailure: true, gatewayports: false, forwardagent: 'yes' });
    const { forwards, notes } = sshGForwards(g, false);
    expect(forwards.map((f) => f.text)).toEqual([
      '-D 1080',
      '-D 127.0.0.1:1081',
      '-D [::1]:1082',
      '-D *:1083',
      '-D 1084',
      '-L 8080:localhost:80',
      '-L 127.0.0.1:8081:[2001:db8::1]:443',
      '-L [::1]:8082:web.example.org:80',
      '-L *:8083:localhost:80',
      '-L *:8084:localhost:80',
      '-L /tmp/local.sock:/run/remote.sock',
      '-L 8085:/run/remote.sock',
      '-L /tmp/l2.sock:localhost:22',
      '-L [/tmp/a:b.sock]:localhost:80',
      '-R 9090:localhost:3000',
      '-R 0:localhost:3001',
      '-R *:9091:[2001:db8::2]:3000',
      '-R /run/user/1000/r.sock:/tmp/l.sock',
      '-R 9092:/tmp/l.sock',
      '-R 9094:127.0.0.1:3000',
    ]);
    expect(forwards.every((f) => f.source === 'ssh_config')).toBe(true);
    expect(notes).toEqual([
      "ssh_config's RemoteForward 9093 is left out: ssh's reverse SOCKS proxy (RemoteForward with a port alone) is not done by moshctl",
    ]);
  });

  it('applies GatewayPorts to local and dynamic forwards without a bind address', () => {
    const { forwards } = sshGForwards(parseSshG(printed), true);
    expect(
      forwards.map((f) => f.text).filter((t) => /^-[LD] (\*:)?(localhost:)?(1080|1084|8080|8085)\b/.test(t)),
    ).toEqual(['-D *:1080', '-D localhost:1084', '-L *:8080:localhost:80', '-L *:8085:/run/remote.sock']);
  });

  it('leaves out, with a note, what moshctl cannot take', () => {
    const { forwards, notes } = sshGForwards(
      parseSshG('localforward 8088 localhost/80\nlocalforward 8089 [a;b]:80\n'),
      false,
    );
    expect(forwards).toEqual([]);
    expect(notes).toEqual([
      'ssh_config\'s LocalForward 8088 localhost/80 is left out: it has the socket path "localhost/80", which is not absolute',
      'ssh_config\'s LocalForward 8089 [a;b]:80 is left out: it has "a;b", which is neither a host name nor an IP address (letters, digits, ".", "_" and "-"; an IPv6 address in brackets)',
    ]);
  });
});

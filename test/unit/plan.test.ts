// Whole plans compared as text: the planner is pure, so no host is needed.
import { agentSocket } from '../../src/plan/forwards.js';
import { checkAgentSocket } from '../../src/forward/agent-link.js';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { formatPlan } from '../../src/plan/format.js';
import { planUp } from '../../src/plan/plan.js';
import { keptSession } from '../../src/plan/session.js';
import { tempTree } from './helpers.js';
import { join } from 'node:path';

function config(yaml: string) {
  const dir = tempTree({ 'moshproxy.yaml': yaml });
  return loadConfig([join(dir, 'moshproxy.yaml')], { USER: 'alice' }).config;
}

const chains = config(`version: 1
defaults:
  user: \${USER}
mosh:
  server_ports: 60000-61000
  network_timeout: 86400
  signal_timeout: 60
hosts:
  outer:
    address: gate.example.org
    port: 2222
    relay: {ports: 61000-61010}
  inner:
    address: 192.168.40.1
    via: [outer]
    relay: {ports: 62000-62010, runtime: socat}
  gpu:
    address: 192.168.40.17
    via: [inner]
    mosh: {network_timeout: 600, locale: en_US.UTF-8}
  web:
    address: web.example.org
    via: [outer]
  direct:
    address: direct.example.org
    user: ops
`);

describe('planUp', () => {
  it('plans a two-hop chain: connects, then server and relays at once, wires, client, teardown at once', () => {
    expect(formatPlan(planUp(chains, 'gpu'))).toMatchInlineSnapshot(`
      "moshctl up gpu: local → outer → inner → gpu
      ssh client: ssh2 (the built-in client: nothing on the route needs more)
      transport: udp (the default, mosh.transport: udp)
        1. connect      outer  ssh alice@gate.example.org:2222, direct
                               at once; why: hop 1 of 2 towards gpu; it relays UDP and tunnels ssh
        2. connect      inner  ssh alice@192.168.40.1:22, tunnelled through outer
                               after 1; why: hop 2 of 2 towards gpu; it relays UDP and tunnels ssh
        3. connect      gpu    ssh alice@192.168.40.17:22, tunnelled through inner
                               after 2; why: mosh-server runs here
        4. server       gpu    mosh-server new -s -p 60000:61000 -l LANG=en_US.UTF-8 (-s: the address the ssh connection came in on, where the relay on inner sends, 192.168.40.17 as inner resolves it), network timeout 600 s, signal timeout 60 s, runs the login shell
                               after 3; why: the session lives here; it prints its UDP port and key
        5. relay        outer  UDP relay (python3, else perl, else socat) on a free port in 61000-61010, exits after 600 s idle
                               after 1; why: inner's UDP port is reachable only from outer
        6. relay        inner  UDP relay (socat, a fallback) on a free port in 62000-62010 → 192.168.40.17:<port of step 4>, exits after 600 s idle
                               after 2, 4; why: gpu's UDP port is reachable only from inner
        7. wire         outer  tell the relay of step 5 to forward to 192.168.40.1:<port of step 6>
                               after 5, 6; why: the relay on outer learns where to forward once inner's port is known
        8. client       local  mosh-client → <address step 1 reached>:<port of step 5>, key in its environment only
                               after 6, 7; why: the first hop, outer, is the only one this machine reaches
      teardown, when mosh-client exits (also \`moshctl down gpu\`):
        9. stop-relay   outer  stop the relay of step 5 (QUIT over its channel, else by its pid)
                               at once; why: started by this session
       10. stop-relay   inner  stop the relay of step 6 (QUIT over its channel, else by its pid)
                               at once; why: started by this session
       11. stop-server  gpu    stop mosh-server of step 4 by its pid
                               at once; why: started by this session
       12. disconnect   gpu    close the ssh connection
                               after 9, 10, 11; why: opened by this session
       13. disconnect   inner  close the ssh connection
                               after 9, 10, 11; why: opened by this session
       14. disconnect   outer  close the ssh connection
                               after 9, 10, 11; why: opened by this session
      "
    `);
  });

  it('plans plain mosh for a host without via: no relay', () => {
    expect(formatPlan(planUp(chains, 'direct', {}, { command: ['htop', '-d', '5'] }))).toMatchInlineSnapshot(`
      "moshctl up direct: local → direct
      ssh client: ssh2 (the built-in client: nothing on the route needs more)
      transport: udp (the default, mosh.transport: udp)
        1. connect      direct  ssh ops@direct.example.org:22, direct
                                at once; why: mosh-server runs here
        2. server       direct  mosh-server new -s -p 60000:61000 -l LANG=C.UTF-8 (-s: the address the ssh connection came in on, where mosh-client sends), network timeout 86400 s, signal timeout 60 s, runs "htop -d 5"
                                after 1; why: the session lives here; it prints its UDP port and key
        3. client       local   mosh-client → <address step 1 reached>:<port of step 2>, key in its environment only
                                after 2; why: direct is reached directly
      teardown, when mosh-client exits (also \`moshctl down direct\`):
        4. stop-server  direct  stop mosh-server of step 2 by its pid
                                at once; why: started by this session
        5. disconnect   direct  close the ssh connection
                                after 4; why: opened by this session
      "
    `);
  });

  it('uses the runtime observed on a hop', () => {
    const plan = planUp(chains, 'web', { runtimes: { outer: 'socat' } });
    expect(plan.steps.find((s) => s.kind === 'relay')).toMatchObject({ host: 'outer', runtime: 'socat' });
  });

  it('gives data with a version and dependencies for --json', () => {
    const plan = planUp(chains, 'web');
    expect(plan.version).toBe(9);
    expect(plan.route).toEqual(['outer', 'web']);
    expect(plan.steps.map((s) => [s.id, s.kind, s.host, s.dependsOn])).toEqual([
      [1, 'connect', 'outer', []],
      [2, 'connect', 'web', [1]],
      [3, 'server', 'web', [2]],
      [4, 'relay', 'outer', [1]],
      [5, 'wire', 'outer', [4, 3]],
      [6, 'client', 'local', [5]],
    ]);
    // Every process is stopped at once; the connections close after.
    expect(plan.teardown.map((s) => [s.id, s.kind, s.host, s.dependsOn])).toEqual([
      [7, 'stop-relay', 'outer', []],
      [8, 'stop-server', 'web', []],
      [9, 'disconnect', 'web', [7, 8]],
      [10, 'disconnect', 'outer', [7, 8]],
    ]);
  });

  it('has no kept session unless mosh.session asks for one', () => {
    const server = planUp(chains, 'web').steps.find((s) => s.kind === 'server');
    expect(server).not.toHaveProperty('session');
  });

  it('rejects an unknown host with a suggestion', () => {
    expect(() => planUp(chains, 'gpy')).toThrowError(
      /unknown host "gpy" \(config: .*\)\n {2}hint: did you mean "gpu"\?/,
    );
  });
});

const kept = config(`version: 1
defaults:
  user: \${USER}
mosh:
  session: tmux
hosts:
  gate:
    address: gate.example.org
  dev.box:
    address: 10.0.3.12
    via: [gate]
  old:
    address: old.example.org
    mosh: {session: screen}
  plain:
    address: plain.example.org
    mosh: {session: none}
`);

describe('planUp with mosh.session', () => {
  it('runs the login shell in the host’s tmux session, and keeps it at teardown', () => {
    expect(formatPlan(planUp(kept, 'dev.box'))).toMatchInlineSnapshot(`
      "moshctl up dev.box: local → gate → dev.box
      ssh client: ssh2 (the built-in client: nothing on the route needs more)
      transport: udp (the default, mosh.transport: udp)
        1. connect      gate     ssh alice@gate.example.org:22, direct
                                 at once; why: hop 1 of 1 towards dev.box; it relays UDP and tunnels ssh
        2. connect      dev.box  ssh alice@10.0.3.12:22, tunnelled through gate
                                 after 1; why: mosh-server runs here
        3. server       dev.box  mosh-server new -s -p 60000:61000 -l LANG=C.UTF-8 (-s: the address the ssh connection came in on, where the relay on gate sends, 10.0.3.12 as gate resolves it), network timeout 86400 s, signal timeout 60 s, runs the login shell in tmux session moshctl-dev_box, or attaches to that session if it exists
                                 after 2; why: the session lives here; it prints its UDP port and key
        4. relay        gate     UDP relay (python3, else perl, else socat) on a free port in 60000-61000, exits after 86400 s idle
                                 after 1; why: dev.box's UDP port is reachable only from gate
        5. wire         gate     tell the relay of step 4 to forward to 10.0.3.12:<port of step 3>
                                 after 4, 3; why: the relay on gate learns where to forward once dev.box's port is known
        6. client       local    mosh-client → <address step 1 reached>:<port of step 4>, key in its environment only
                                 after 5; why: the first hop, gate, is the only one this machine reaches
      teardown, when mosh-client exits (also \`moshctl down dev.box\`):
        7. stop-relay   gate     stop the relay of step 4 (QUIT over its channel, else by its pid)
                                 at once; why: started by this session
        8. stop-server  dev.box  stop mosh-server of step 3 by its pid
                                 at once; why: started by this session; the tmux session moshctl-dev_box stays, for the next up
        9. disconnect   dev.box  close the ssh connection
                                 after 7, 8; why: opened by this session
       10. disconnect   gate     close the ssh connection
                                 after 7, 8; why: opened by this session
      "
    `);
  });

  it('says a command runs only when the session is new (a host’s own screen setting)', () => {
    const plan = planUp(kept, 'old', {}, { command: ['htop', '-d', '5'] });
    expect(formatPlan(plan).split('\n')[5]).toBe(
      '  2. server       old    mosh-server new -s -p 60000:61000 -l LANG=C.UTF-8 (-s: the address the ssh connection came in on, where mosh-client sends), network timeout 86400 s, signal timeout 60 s, runs "htop -d 5" in a new screen session moshctl-old=, or attaches to that session if it exists (the command then does not run)',
    );
    expect(plan.steps.find((s) => s.kind === 'server')).toMatchObject({
      command: ['htop', '-d', '5'],
      session: { program: 'screen', name: 'moshctl-old=' },
    });
  });

  it('gives the session as data, absent for a host that sets none', () => {
    const server = (name: string) => planUp(kept, name).steps.find((s) => s.kind === 'server');
    expect(server('dev.box')).toMatchObject({ session: { program: 'tmux', name: 'moshctl-dev_box' } });
    expect(server('plain')).not.toHaveProperty('session');
    expect(formatPlan(planUp(kept, 'plain'))).not.toMatch(/tmux|screen/);
  });
});

describe('keptSession', () => {
  it('names the session after the host, with only letters, digits, _ and -', () => {
    expect(keptSession('none', 'web')).toBeUndefined();
    expect(keptSession('tmux', 'web')).toEqual({ program: 'tmux', name: 'moshctl-web' });
    // ssh_config hosts may be user@host:port or [v6]; tmux would expand #{...} in a name.
    expect(keptSession('tmux', 'alice@dev.box:2222')?.name).toBe('moshctl-alice_dev_box_2222');
    expect(keptSession('tmux', "[::1];$(id)'#{pane_pid}")?.name).toBe('moshctl-___1____id____pane_pid_');
  });

  it('ends screen names with "=", so that one is never the prefix of another', () => {
    const web = keptSession('screen', 'web')?.name ?? '';
    const web2 = keptSession('screen', 'web2')?.name ?? '';
    expect([web, web2]).toEqual(['moshctl-web=', 'moshctl-web2=']);
    expect(web2.startsWith(web)).toBe(false);
  });
});

describe('planUp with the tcp transport', () => {
  const dir = tempTree({
    'moshproxy.yaml': `version: 1
hosts:
  gate: {address: 192.0.2.1}
  box: {address: 203.0.113.10, via: [gate], mosh: {transport: tcp}}
`,
  });
  const { config } = loadConfig([join(dir, 'moshproxy.yaml')], {});

  it('starts no relay: a forwarder on the target, and mosh-client on this machine’s loopback', () => {
    const plan = planUp(config, 'box');
    expect(plan.transport).toEqual({
      kind: 'tcp',
      why: expect.stringMatching(/^mosh\.transport: tcp, set at \S*moshproxy\.yaml:\d+$/) as string,
    });
    expect(plan.steps.map((s) => `${s.kind} ${s.host}`)).toEqual([
      'connect gate',
      'connect box',
      'server box',
      'forward box',
      'client local',
    ]);
    const forward = plan.steps.find((s) => s.kind === 'forward');
    const client = plan.steps.find((s) => s.kind === 'client');
    expect(forward?.dependsOn).toEqual([3]);
    expect(client).toMatchObject({ connectTo: { address: { local: '127.0.0.1' }, port: { step: 4 } } });
    expect(plan.teardown.map((s) => s.kind)).toEqual([
      'stop-forward',
      'stop-server',
      'disconnect',
      'disconnect',
    ]);
    expect(formatPlan(plan)).toMatch(
      /^transport: tcp \(mosh\.transport: tcp, set at \S*moshproxy\.yaml:4\)$/m,
    );
  });

  it('--transport overrides the config either way, and says so', () => {
    expect(planUp(config, 'box', {}, { transport: 'udp' }).steps.some((s) => s.kind === 'relay')).toBe(true);
    const gate = planUp(config, 'gate', {}, { transport: 'tcp' });
    expect(gate.transport).toEqual({ kind: 'tcp', why: '--transport' });
  });

  it('refuses --no-connect with tcp, saying why', () => {
    expect(() => planUp(config, 'box', {}, { noConnect: true })).toThrow(
      /--no-connect cannot hand over a tcp session/,
    );
  });
});

describe('planUp with the auto transport', () => {
  const dir = tempTree({
    'moshproxy.yaml': `version: 1
hosts:
  gate: {address: 192.0.2.1}
  box: {address: 203.0.113.10, via: [gate], mosh: {transport: auto}}
  near: {address: 198.51.100.7, mosh: {transport: auto}}
`,
  });
  const { config } = loadConfig([join(dir, 'moshproxy.yaml')], {});

  it('plans the relays with a fallback, then a forward step that sends by UDP to the first relay first', () => {
    const plan = planUp(config, 'box');
    expect(plan.transport).toEqual({
      kind: 'auto',
      why: expect.stringMatching(/^mosh\.transport: auto, set at \S*moshproxy\.yaml:\d+$/) as string,
    });
    expect(plan.steps.map((s) => `${s.id} ${s.kind} ${s.host}`)).toEqual([
      '1 connect gate',
      '2 connect box',
      '3 server box',
      '4 relay gate',
      '5 wire gate',
      '6 forward box',
      '7 client local',
    ]);
    const byId = (id: number) => plan.steps[id - 1];
    expect(byId(4)).toMatchObject({ fallback: 6 });
    expect(byId(5)).toMatchObject({ fallback: 6 });
    expect(byId(6)).toMatchObject({
      dependsOn: [3, 5],
      // Where mosh-server bound with -s: the forwarder, if tcp takes over, sends to the same socket.
      to: { address: { boundBy: 3 }, port: { step: 3 } },
      udpFirst: {
        to: { host: 'gate', address: { reachedBy: 1 }, port: { step: 4 } },
        switchAfterMs: 2000,
        silenceMs: 8000,
      },
    });
    expect(byId(7)).toMatchObject({ connectTo: { address: { local: '127.0.0.1' }, port: { step: 6 } } });
    expect(plan.teardown.map((s) => s.kind)).toEqual([
      'stop-relay',
      'stop-forward',
      'stop-server',
      'disconnect',
      'disconnect',
    ]);
    const text = formatPlan(plan);
    expect(text).toMatch(/^transport: auto \(mosh\.transport: auto, set at \S*moshproxy\.yaml:\d+\)$/m);
    expect(text).toContain('if it fails, step 6 goes by tcp');
    expect(text).toContain('when no reply comes within 2 s (or for 8 s later), or step 4 failed');
  });

  it('with no bastion, sends by UDP straight to mosh-server first', () => {
    const plan = planUp(config, 'near');
    expect(plan.steps.some((s) => s.kind === 'relay')).toBe(false);
    expect(plan.steps.find((s) => s.kind === 'forward')).toMatchObject({
      dependsOn: [2],
      udpFirst: { to: { host: 'near', address: { reachedBy: 1 }, port: { step: 2 } } },
    });
  });

  it('is udp with --no-connect, which hands over a session no moshctl is in the path of', () => {
    const plan = planUp(config, 'box', {}, { noConnect: true });
    expect(plan.transport).toEqual({
      kind: 'udp',
      why: expect.stringMatching(
        /^mosh\.transport: auto, set at \S*moshproxy\.yaml:\d+, and --no-connect hands over a udp session$/,
      ) as string,
    });
    expect(plan.steps.some((s) => s.kind === 'forward')).toBe(false);
    expect(plan.steps.some((s) => 'fallback' in s)).toBe(false);
    expect(plan.steps.at(-1)?.kind).toBe('hand-over');
  });

  it('--transport auto works on a udp host', () => {
    const plan = planUp(config, 'gate', {}, { transport: 'auto' });
    expect(plan.transport).toEqual({ kind: 'auto', why: '--transport' });
    expect(plan.steps.find((s) => s.kind === 'forward')).toHaveProperty('udpFirst');
  });
});

describe('planUp with an IPv6 target', () => {
  const v6 = config(`version: 1
hosts:
  bastion:
    address: 192.0.2.1
  target:
    address: 2001:db8:113::10
    via: [bastion]
  direct6:
    address: 2001:db8:113::11
`);

  it('writes an IPv6 address with its port in brackets, as ssh does', () => {
    const text = formatPlan(planUp(v6, 'target'));
    expect(text).toContain('ssh root@[2001:db8:113::10]:22, tunnelled through bastion');
    expect(text).toContain('tell the relay of step 4 to forward to [2001:db8:113::10]:<port of step 3>');
    expect(text).toContain('ssh root@192.0.2.1:22, direct');
    expect(text).not.toMatch(/2001:db8:113::10:/);
    expect(formatPlan(planUp(v6, 'direct6'))).toContain('ssh root@[2001:db8:113::11]:22, direct');
  });
});

describe('planUp: where mosh-server listens (mosh.bind_server)', () => {
  const dir = tempTree({
    'moshproxy.yaml': `version: 1
hosts:
  gate: {address: 192.0.2.1}
  box: {address: box.example.org, via: [gate]}
  v6: {address: "2001:db8::10", via: [gate], mosh: {bind_server: "2001:db8::10", transport: auto}}
  wide: {address: 203.0.113.20, mosh: {bind_server: any, transport: tcp}}
`,
  });
  const { config } = loadConfig([join(dir, 'moshproxy.yaml')], {});
  const serverLine = (p: ReturnType<typeof planUp>): string =>
    formatPlan(p)
      .split('\n')
      .find((l) => / server /.test(l))
      ?.replace(/^.*mosh-server new /, '')
      .replace(/, network timeout.*$/, '') ?? '';
  const forwardTo = (p: ReturnType<typeof planUp>): unknown =>
    p.steps.find((s) => s.kind === 'forward' && 'to' in s)?.to.address;

  it('binds with -s by default: where the last relay sends, or mosh-client without a bastion', () => {
    expect(serverLine(planUp(config, 'box'))).toBe(
      '-s -p 60000:61000 -l LANG=C.UTF-8 (-s: the address the ssh connection came in on, where the relay on gate sends, box.example.org as gate resolves it)',
    );
    expect(serverLine(planUp(config, 'gate'))).toBe(
      '-s -p 60000:61000 -l LANG=C.UTF-8 (-s: the address the ssh connection came in on, where mosh-client sends)',
    );
    expect(planUp(config, 'box').steps.find((s) => s.kind === 'server')).toMatchObject({
      bind: { mode: 'ssh' },
    });
  });

  it('with transport auto, the forwarder sends where -s bound, so both paths reach one socket', () => {
    const plan = planUp(config, 'box', {}, { transport: 'auto' });
    expect(serverLine(plan)).toMatch(
      /where the relay on gate sends, .*, and the forwarder if tcp takes over\)$/,
    );
    expect(forwardTo(plan)).toEqual({ boundBy: 3 });
    expect(formatPlan(plan)).toContain(
      'a datagram forwarder (python3, else perl) on the target → <address step 3 bound>:',
    );
  });

  it('with transport tcp, listens on the loopback the forwarder sends from', () => {
    const plan = planUp(config, 'box', {}, { transport: 'tcp' });
    expect(serverLine(plan)).toBe(
      "-i 127.0.0.1 -p 60000:61000 -l LANG=C.UTF-8 (-i 127.0.0.1: the target's loopback, where the forwarder sends from (transport tcp, mosh.bind_server: ssh))",
    );
    expect(forwardTo(plan)).toBe('127.0.0.1');
  });

  it('takes an address (-i) or any (no option) from the config; the forwarder follows', () => {
    const v6 = planUp(config, 'v6');
    expect(serverLine(v6)).toBe(
      '-i 2001:db8::10 -p 60000:61000 -l LANG=C.UTF-8 (-i 2001:db8::10: mosh.bind_server: 2001:db8::10)',
    );
    expect(forwardTo(v6)).toBe('2001:db8::10');
    expect(formatPlan(v6)).toContain('on the target → [2001:db8::10]:<port of step 3>');
    const wide = planUp(config, 'wide');
    expect(serverLine(wide)).toBe(
      "-p 60000:61000 -l LANG=C.UTF-8 (no -s or -i: every IPv4 address, mosh-server's own default (mosh.bind_server: any))",
    );
    expect(forwardTo(wide)).toBe('127.0.0.1');
  });

  it('--bind-server overrides the config, and says so', () => {
    expect(serverLine(planUp(config, 'v6', {}, { bindServer: 'ssh' }))).toMatch(/^-s .*\(-s: the address/);
    expect(serverLine(planUp(config, 'box', {}, { bindServer: '198.51.100.7' }))).toBe(
      '-i 198.51.100.7 -p 60000:61000 -l LANG=C.UTF-8 (-i 198.51.100.7: --bind-server: 198.51.100.7)',
    );
    expect(serverLine(planUp(config, 'box', {}, { bindServer: 'any' }))).toMatch(/\(--bind-server: any\)\)$/);
  });
});

describe("planUp: mosh's own options (mosh.server, client, predict, predict_overwrite, no_init)", () => {
  const dir = tempTree({
    'moshproxy.yaml': `version: 1
mosh: {predict: never}
hosts:
  gate: {address: 192.0.2.1}
  mac:
    address: 203.0.113.30
    via: [gate]
    mosh: {server: /opt/homebrew/bin/mosh-server, client: bin/mosh-client, predict: always, no_init: true}
`,
  });
  const { config } = loadConfig([join(dir, 'moshproxy.yaml')], {});
  const line = (p: ReturnType<typeof planUp>, kind: string): string =>
    formatPlan(p)
      .split('\n')
      .find((l) => new RegExp(`^ +\\d+\\. ${kind} `).test(l))
      ?.replace(/^ +\d+\. \S+ +\S+ +/, '') ?? '';

  it('runs the mosh-server the target names, and mosh-client with the variables mosh would set', () => {
    const plan = planUp(config, 'mac');
    expect(line(plan, 'server')).toMatch(/^\/opt\/homebrew\/bin\/mosh-server new -s -p 60000:61000 /);
    // A relative mosh.client is relative to the file that names it.
    expect(line(plan, 'client')).toBe(
      `${join(dir, 'bin/mosh-client')} → <address step 1 reached>:<port of step 4>, key in its environment only, with MOSH_PREDICTION_DISPLAY=always MOSH_NO_TERM_INIT=1`,
    );
    // The file's mosh: applies where a host says nothing; nothing asked, nothing set.
    expect(line(planUp(config, 'gate'), 'client')).toBe(
      'mosh-client → <address step 1 reached>:<port of step 2>, key in its environment only, with MOSH_PREDICTION_DISPLAY=never',
    );
  });

  it('the options override the settings; a hand-over says which variables its client should have', () => {
    const plan = planUp(
      config,
      'mac',
      {},
      {
        server: '~/.local/bin/mosh-server',
        client: '/usr/local/bin/mosh-client',
        predict: 'experimental',
        predictOverwrite: true,
      },
    );
    expect(line(plan, 'server')).toMatch(/^~\/\.local\/bin\/mosh-server new -s /);
    expect(plan.steps.find((s) => s.kind === 'client')).toMatchObject({
      program: {
        path: '/usr/local/bin/mosh-client',
        env: {
          MOSH_PREDICTION_DISPLAY: 'experimental',
          MOSH_PREDICTION_OVERWRITE: 'yes',
          MOSH_NO_TERM_INIT: '1',
        },
      },
    });
    expect(line(planUp(config, 'gate', {}, { noConnect: true, noInit: true }), 'hand-over')).toBe(
      'print host, port and key for a mosh client elsewhere (to <address step 1 reached>:<port of step 2>), with MOSH_PREDICTION_DISPLAY=never MOSH_NO_TERM_INIT=1, then leave the session running',
    );
  });
});

describe('planUp with port forwards and the agent', () => {
  const dir = tempTree({
    'moshproxy.yaml': `version: 1
hosts:
  gate: {address: 192.0.2.1}
  dev.box:
    address: 203.0.113.10
    via: [gate]
    forward_agent: true
    forward:
      local: [8080:localhost:80]
      remote: ["0:localhost:3000"]
      exit_on_failure: true
  plain: {address: 198.51.100.7, mosh: {transport: tcp}}
`,
  });
  const { config } = loadConfig([join(dir, 'moshproxy.yaml')], {});
  const masked = (p: ReturnType<typeof planUp>): string => formatPlan(p).replaceAll(dir, '<dir>');

  it('sets up each forward and the agent once the target is connected, before the client, which does not wait for them', () => {
    const plan = planUp(config, 'dev.box', {}, { forwards: [{ kind: 'dynamic', arg: '1080' }] });
    expect(masked(plan)).toMatchInlineSnapshot(`
      "moshctl up dev.box: local → gate → dev.box
      ssh client: ssh2 (the built-in client: nothing on the route needs more)
      transport: udp (the default, mosh.transport: udp)
        1. connect      gate     ssh root@192.0.2.1:22, direct
                                 at once; why: hop 1 of 1 towards dev.box; it relays UDP and tunnels ssh
        2. connect      dev.box  ssh root@203.0.113.10:22, tunnelled through gate
                                 after 1; why: mosh-server runs here
        3. server       dev.box  mosh-server new -s -p 60000:61000 -l LANG=C.UTF-8 (-s: the address the ssh connection came in on, where the relay on gate sends, 203.0.113.10 as gate resolves it), network timeout 86400 s, signal timeout 60 s, runs the login shell
                                 after 2; why: the session lives here; it prints its UDP port and key
        4. relay        gate     UDP relay (python3, else perl, else socat) on a free port in 60000-61000, exits after 86400 s idle
                                 after 1; why: dev.box's UDP port is reachable only from gate
        5. wire         gate     tell the relay of step 4 to forward to 203.0.113.10:<port of step 3>
                                 after 4, 3; why: the relay on gate learns where to forward once dev.box's port is known
        6. port-forward dev.box  listens on this machine (loopback, port 8080); each connection goes on from dev.box to localhost:80; kept across reconnects; if it cannot be set up: up fails (ExitOnForwardFailure)
                                 after 2; why: -L 8080:localhost:80 (<dir>/moshproxy.yaml:9)
        7. port-forward dev.box  dev.box's sshd listens (loopback, a port dev.box chooses); each connection comes back to this machine, to localhost:3000; kept across reconnects; if it cannot be set up: up fails (ExitOnForwardFailure)
                                 after 2; why: -R 0:localhost:3000 (<dir>/moshproxy.yaml:10)
        8. port-forward dev.box  a SOCKS4/5 proxy on this machine (loopback, port 1080); each connection goes on from dev.box to where the client asks; kept across reconnects; if it cannot be set up: up fails (ExitOnForwardFailure)
                                 after 2; why: -D 1080 (command line)
        9. agent        dev.box  forward this machine's ssh-agent to dev.box only, over an ssh channel of its own, and link ~/.moshctl/agent/dev_box.sock to it there (the shell's SSH_AUTH_SOCK)
                                 after 2; why: forward_agent at <dir>/moshproxy.yaml:7; the session's SSH_AUTH_SOCK, kept pointing at the agent of each new connection
       10. client       local    mosh-client → <address step 1 reached>:<port of step 4>, key in its environment only
                                 after 5; why: the first hop, gate, is the only one this machine reaches
      teardown, when mosh-client exits (also \`moshctl down dev.box\`):
       11. stop-relay   gate     stop the relay of step 4 (QUIT over its channel, else by its pid)
                                 at once; why: started by this session
       12. stop-server  dev.box  stop mosh-server of step 3 by its pid
                                 at once; why: started by this session
       13. unforward    dev.box  close the forward of step 6: its listener and the connections it carries
                                 at once; why: opened by this session
       14. unforward    dev.box  close the forward of step 7: its listener and the connections it carries
                                 at once; why: opened by this session
       15. unforward    dev.box  close the forward of step 8: its listener and the connections it carries
                                 at once; why: opened by this session
       16. unlink-agent dev.box  remove the link of step 9 and close the agent's channel
                                 at once; why: the agent behind it goes with the session
       17. disconnect   dev.box  close the ssh connection
                                 after 11, 12, 13, 14, 15, 16; why: opened by this session
       18. disconnect   gate     close the ssh connection
                                 after 11, 12, 13, 14, 15, 16; why: opened by this session
      "
    `);
    expect(plan.steps.find((s) => s.kind === 'server')).toMatchObject({
      agentSocket: '~/.moshctl/agent/dev_box.sock',
    });
    expect(plan.steps.find((s) => s.kind === 'port-forward')).toMatchObject({
      required: true,
      spec: { kind: 'local', listen: { port: 8080 }, to: { host: 'localhost', port: 80 } },
    });
    expect(plan.notes).toEqual([]);
  });

  it('plans -L, -R, -D and -A of the command line for a host that configures none, also with the tcp transport', () => {
    const plan = planUp(
      config,
      'plain',
      {},
      {
        forwards: [
          { kind: 'local', arg: '/tmp/l.sock:/run/r.sock' },
          { kind: 'remote', arg: '*:9090:[2001:db8::1]:3000' },
        ],
        forwardAgent: true,
      },
    );
    expect(plan.steps.map((s) => `${s.id} ${s.kind} ${s.dependsOn.join(',')}`)).toEqual([
      '1 connect ',
      '2 server 1',
      '3 forward 2',
      '4 port-forward 1',
      '5 port-forward 1',
      '6 agent 1',
      '7 client 3',
    ]);
    expect(plan.teardown.map((s) => `${s.id} ${s.kind} ${'of' in s ? s.of : s.dependsOn.join(',')}`)).toEqual(
      [
        '8 stop-forward 3',
        '9 stop-server 2',
        '10 stop-port-forward 4',
        '11 stop-port-forward 5',
        '12 unlink-agent 6',
        '13 disconnect 8,9,10,11,12',
      ],
    );
    const text = formatPlan(plan);
    expect(text).toContain(
      '  4. port-forward plain  listens on this machine (the socket /tmp/l.sock); each connection goes on from plain to the socket /run/r.sock; kept across reconnects; if it cannot be set up: a warning, and the session goes on\n                         after 1; why: -L /tmp/l.sock:/run/r.sock (command line)',
    );
    expect(text).toContain(
      "  5. port-forward plain  plain's sshd listens (every interface, port 9090); each connection comes back to this machine, to [2001:db8::1]:3000;",
    );
    expect(text).toContain('why: -A; the session');
    expect(text).toContain(' 10. unforward    plain  close the forward of step 4');
  });

  it('drops a command-line forward the config has already, and refuses two that listen on one port, naming both', () => {
    const plan = planUp(
      config,
      'dev.box',
      {},
      { forwards: [{ kind: 'local', arg: 'localhost:8080:localhost:80' }] },
    );
    expect(plan.steps.filter((s) => s.kind === 'port-forward')).toHaveLength(2);
    expect(() =>
      planUp(config, 'dev.box', {}, { forwards: [{ kind: 'dynamic', arg: '127.0.0.1:8080' }] }),
    ).toThrow(
      /^-L 8080:localhost:80 \(\S*moshproxy\.yaml:9\) and -D 127\.0\.0\.1:8080 \(command line\) listen on the same port\n {2}hint: give one of them another port or path, or leave one out$/,
    );
    expect(() =>
      planUp(config, 'dev.box', {}, { forwards: [{ kind: 'remote', arg: '0:localhost:4000' }] }),
    ).not.toThrow();
  });

  it('refuses --no-connect with a forward or -A of the command line, saying why; leaves out the configured ones with a note', () => {
    for (const options of [
      { forwards: [{ kind: 'local' as const, arg: '8080:localhost:80' }] },
      { forwardAgent: true },
    ])
      expect(() => planUp(config, 'plain', {}, { ...options, noConnect: true, transport: 'udp' })).toThrow(
        /^--no-connect cannot take (-L 8080:localhost:80|-A): forwards and the agent live in the moshctl up process, and with --no-connect none stays to carry them\n {2}hint: run moshctl up plain without --no-connect/,
      );
    const plan = planUp(config, 'dev.box', {}, { noConnect: true });
    expect(plan.steps.some((s) => s.kind === 'port-forward' || s.kind === 'agent')).toBe(false);
    expect(plan.steps.find((s) => s.kind === 'server')).not.toHaveProperty('agentSocket');
    expect(plan.notes.map((n) => n.replaceAll(dir, '<dir>'))).toEqual([
      '--no-connect leaves out -L 8080:localhost:80 (<dir>/moshproxy.yaml:9), -R 0:localhost:3000 (<dir>/moshproxy.yaml:10), agent forwarding (forward_agent at <dir>/moshproxy.yaml:7): forwards and the agent live in the moshctl up process, and none stays to carry them',
    ]);
    expect(masked(plan)).toContain('\nnote: --no-connect leaves out -L 8080:localhost:80');
  });

  it('warns of a local or dynamic forward that listens beyond loopback; GatewayPorts reaches -L and -D of the command line too', () => {
    const plan = planUp(
      config,
      'plain',
      {},
      { forwards: [{ kind: 'local', arg: '0.0.0.0:8080:localhost:80' }] },
    );
    expect(plan.notes).toEqual([
      '-L 0.0.0.0:8080:localhost:80 (command line) listens on every IPv4 interface of this machine: whoever reaches this machine there reaches localhost:80 through plain; give it the bind address 127.0.0.1 unless that is meant',
    ]);
    const gateway = {
      ...config,
      hosts: { ...config.hosts, plain: { ...config.hosts.plain!, gateway_ports: true } },
    };
    const wide = planUp(
      gateway,
      'plain',
      {},
      {
        forwards: [
          { kind: 'dynamic', arg: '1080' },
          { kind: 'dynamic', arg: 'localhost:1081' },
        ],
      },
    );
    expect(wide.steps.flatMap((s) => (s.kind === 'port-forward' ? [s.spec.text] : []))).toEqual([
      '-D *:1080',
      '-D localhost:1081',
    ]);
    expect(wide.notes).toEqual([
      "-D *:1080 (command line) listens on every interface of this machine: whoever reaches this machine there reaches anything plain reaches (a SOCKS proxy); ssh_config's GatewayPorts yes binds a forward without a bind address so; give it the bind address 127.0.0.1 unless that is meant",
    ]);
  });

  it('names the option and the spec of a bad forward', () => {
    expect(() => planUp(config, 'plain', {}, { forwards: [{ kind: 'remote', arg: '9093' }] })).toThrow(
      /^-R "9093" is ssh's reverse SOCKS proxy/,
    );
  });
});

describe('agentSocket', () => {
  it('is named after the host alone, in a form the link scripts accept, however the host is named', () => {
    expect(agentSocket('dev-box')).toBe('~/.moshctl/agent/dev-box.sock');
    expect(agentSocket('-odd')).toBe('~/.moshctl/agent/_odd.sock');
    const long = agentSocket(`${'a'.repeat(70)}.example`);
    expect(long).toMatch(/^~\/\.moshctl\/agent\/a{55}_[0-9a-f]{8}\.sock$/);
    expect(agentSocket(`${'a'.repeat(70)}.example2`)).not.toBe(long);
    for (const name of ['dev-box', '-odd', 'user@[2001:db8::1]:22', 'x'.repeat(200)])
      expect(checkAgentSocket(agentSocket(name))).toBe(agentSocket(name));
  });
});

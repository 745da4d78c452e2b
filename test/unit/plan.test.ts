// Whole plans compared as text: the planner is pure, so no host is needed.
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { formatPlan } from '../../src/plan/format.js';
import { planUp } from '../../src/plan/plan.js';
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
      "moshctl up gpu: local → outer → inner → gpu (ssh client: ssh2)
        1. connect     outer  ssh alice@gate.example.org:2222, direct
                              at once; why: hop 1 of 2 towards gpu; it relays UDP and tunnels ssh
        2. connect     inner  ssh alice@192.168.40.1:22, tunnelled through outer
                              after 1; why: hop 2 of 2 towards gpu; it relays UDP and tunnels ssh
        3. connect     gpu    ssh alice@192.168.40.17:22, tunnelled through inner
                              after 2; why: mosh-server runs here
        4. server      gpu    mosh-server new -p 60000:61000 -l LANG=en_US.UTF-8, network timeout 600 s, signal timeout 60 s, runs the login shell
                              after 3; why: the session lives here; it prints its UDP port and key
        5. relay       outer  UDP relay (python3, else perl, else socat) on a free port in 61000-61010, exits after 600 s idle
                              after 1; why: inner's UDP port is reachable only from outer
        6. relay       inner  UDP relay (socat, a fallback) on a free port in 62000-62010 → 192.168.40.17:<port of step 4>, exits after 600 s idle
                              after 2, 4; why: gpu's UDP port is reachable only from inner
        7. wire        outer  tell the relay of step 5 to forward to 192.168.40.1:<port of step 6>
                              after 5, 6; why: the relay on outer learns where to forward once inner's port is known
        8. client      local  mosh-client → <address step 1 reached>:<port of step 5>, key in its environment only
                              after 6, 7; why: the first hop, outer, is the only one this machine reaches
      teardown, when mosh-client exits (also \`moshctl down gpu\`):
        9. stop-relay  outer  stop the relay of step 5 (QUIT over its channel, else by its pid)
                              at once; why: started by this session
       10. stop-relay  inner  stop the relay of step 6 (QUIT over its channel, else by its pid)
                              at once; why: started by this session
       11. stop-server gpu    stop mosh-server of step 4 by its pid
                              at once; why: started by this session
       12. disconnect  gpu    close the ssh connection
                              after 9, 10, 11; why: opened by this session
       13. disconnect  inner  close the ssh connection
                              after 9, 10, 11; why: opened by this session
       14. disconnect  outer  close the ssh connection
                              after 9, 10, 11; why: opened by this session
      "
    `);
  });

  it('plans plain mosh for a host without via: no relay', () => {
    expect(formatPlan(planUp(chains, 'direct', {}, { command: ['htop', '-d', '5'] }))).toMatchInlineSnapshot(`
      "moshctl up direct: local → direct (ssh client: ssh2)
        1. connect     direct  ssh ops@direct.example.org:22, direct
                               at once; why: mosh-server runs here
        2. server      direct  mosh-server new -p 60000:61000 -l LANG=C.UTF-8, network timeout 86400 s, signal timeout 60 s, runs "htop -d 5"
                               after 1; why: the session lives here; it prints its UDP port and key
        3. client      local   mosh-client → <address step 1 reached>:<port of step 2>, key in its environment only
                               after 2; why: direct is reached directly
      teardown, when mosh-client exits (also \`moshctl down direct\`):
        4. stop-server direct  stop mosh-server of step 2 by its pid
                               at once; why: started by this session
        5. disconnect  direct  close the ssh connection
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
    expect(plan.version).toBe(3);
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

  it('rejects an unknown host with a suggestion', () => {
    expect(() => planUp(chains, 'gpy')).toThrowError(
      /unknown host "gpy" \(config: .*\)\n {2}hint: did you mean "gpu"\?/,
    );
  });
});

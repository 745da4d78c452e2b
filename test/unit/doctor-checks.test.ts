// doctor's pure half: the order of checks, what a connect failure (as the ssh
// layers classify it, ssh2's and OpenSSH's alike) means for each hop, skips
// after the first failure, and how the transport changes a udp-path failure.
import { describe, expect, it } from 'vitest';
import type { SshHost } from '../../src/config/types.js';
import {
  assemble,
  checkOrder,
  connectFailureOf,
  connectResults,
  doctorExitCode,
  settleTransport,
  type RouteHop,
} from '../../src/doctor/checks.js';
import type { CheckResult } from '../../src/doctor/types.js';
import { EnvError, Interrupted } from '../../src/errors.js';
import { masterFailure } from '../../src/openssh/failures.js';
import { connectError, forwardError, forwardTimeout } from '../../src/ssh/hop-errors.js';

const hop = (name: string, address: string): RouteHop & SshHost => ({
  name,
  ssh_name: address,
  address,
  port: 22,
  user: 'ops',
  identity_files: ['/home/ops/.ssh/id_ed25519'],
  certificate_files: [],
  known_hosts: ['/home/ops/.ssh/known_hosts'],
  global_known_hosts: [],
  host_key_alias: undefined,
  host_key_policy: 'strict',
  identity_agent: undefined,
  connect_timeout: 10,
  server_alive_interval: 15,
  proxy_command: undefined,
  ssh_client: 'ssh2',
  hash_known_hosts: false,
});
const bastion = hop('bastion', '192.0.2.1');
const inner = hop('inner', '198.51.100.2');
const box = hop('box', '203.0.113.10');
const route = [bastion, inner, box];
const names = route.map((h) => h.name);

/** "host check status" per line, for compact expectations. */
const brief = (rs: readonly CheckResult[]): string[] => rs.map((r) => `${r.host} ${r.check} ${r.status}`);

describe('checkOrder', () => {
  it('lists mosh-client here, then each hop in route order, bastions with forwarding and runtime, the target with mosh-server, the versions and locale, then the round trips', () => {
    expect(checkOrder(['bastion', 'box']).map((c) => `${c.host} ${c.check}`)).toEqual([
      'local mosh-client',
      'bastion reachable',
      'bastion host-key',
      'bastion auth',
      'bastion forwarding',
      'bastion relay-runtime',
      'box reachable',
      'box host-key',
      'box auth',
      'box mosh-server',
      'box mosh-versions',
      'box locale',
      'bastion udp-round-trip',
      'box tcp-round-trip',
    ]);
  });

  it('without bastions the datagrams go to the target itself', () => {
    expect(checkOrder(['box']).filter((c) => c.check.endsWith('round-trip'))).toEqual([
      { host: 'box', check: 'udp-round-trip' },
      { host: 'box', check: 'tcp-round-trip' },
    ]);
  });
});

describe('connect failures, as the ssh layers classify them', () => {
  const unknownKey = connectError(new Error('verification failed'), inner, bastion, {
    tried: 'key',
    readyTimeoutMs: 10_000,
    hostKey: {
      verdict: { status: 'unknown', caOnly: false },
      keyType: 'ssh-ed25519',
      key: Buffer.alloc(32, 1),
      knownHostsMissing: false,
    },
  });

  it('an unknown host key of the second hop: the first hop is all ok, the second answered, its key fails', () => {
    const f = connectFailureOf(unknownKey, names);
    expect(f).toMatchObject({ host: 'inner', fault: 'host-key' });
    const rs = connectResults(route, f, { bastion: 80 });
    expect(brief(rs)).toEqual([
      'bastion reachable ok',
      'bastion host-key ok',
      'bastion auth ok',
      'bastion forwarding ok',
      'inner reachable ok',
      'inner host-key fail',
    ]);
    expect(rs[0]?.detail).toBe('192.0.2.1:22, logged in after 80 ms');
    expect(rs[5]?.detail).toContain('host key of inner (ops@198.51.100.2:22) is not in');
    expect(rs[5]?.hint).toContain('ssh-keyscan -p 22 198.51.100.2');
  });

  it('a refused login fails auth of that hop', () => {
    const e = connectError(
      Object.assign(new Error('All configured authentication methods failed'), {
        level: 'client-authentication',
      }),
      box,
      inner,
      { tried: 'key', readyTimeoutMs: 10_000, hostKey: undefined },
    );
    expect(brief(connectResults(route, connectFailureOf(e, names))).slice(-4)).toEqual([
      'inner forwarding ok',
      'box reachable ok',
      'box host-key ok',
      'box auth fail',
    ]);
  });

  it('a forward the previous hop refuses is that hop’s forwarding failure, not the next hop’s', () => {
    const e = forwardError(Object.assign(new Error('prohibited'), { reason: 1 }), box, inner);
    const rs = connectResults(route, connectFailureOf(e, names));
    expect(brief(rs).slice(-2)).toEqual(['inner auth ok', 'inner forwarding fail']);
    expect(rs[rs.length - 1]?.hint).toContain('AllowTcpForwarding');
  });

  it('a hop the previous one cannot reach fails reachable; the forwarding before it is not confirmed', () => {
    const e = forwardTimeout(box, inner, 10_000);
    expect(brief(connectResults(route, connectFailureOf(e, names))).slice(-2)).toEqual([
      'inner forwarding skip',
      'box reachable fail',
    ]);
  });

  it('an unreachable first hop fails at once', () => {
    const e = connectError(
      Object.assign(new Error('x'), { level: 'client-socket', code: 'ECONNREFUSED' }),
      bastion,
      undefined,
      {
        tried: 'key',
        readyTimeoutMs: 10_000,
        hostKey: undefined,
      },
    );
    expect(brief(connectResults(route, connectFailureOf(e, names)))).toEqual(['bastion reachable fail']);
  });

  it('OpenSSH’s failures carry the same faults', () => {
    const refused = masterFailure({
      host: box,
      prev: inner,
      log: 'ops@203.0.113.10: Permission denied (publickey).\r\n',
      prevLog: '',
    });
    expect(connectFailureOf(refused, names)).toMatchObject({ host: 'box', fault: 'auth' });
    const prohibited = masterFailure({
      host: box,
      prev: inner,
      log: 'stdio forwarding failed\r\n',
      prevLog: 'channel 3: open failed: administratively prohibited: open failed\r\n',
    });
    expect(connectFailureOf(prohibited, names)).toMatchObject({ host: 'box', fault: 'forward' });
    const changed = masterFailure({
      host: inner,
      prev: bastion,
      log: '@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\r\nHost key verification failed.\r\n',
      prevLog: '',
    });
    expect(connectFailureOf(changed, names)).toMatchObject({ host: 'inner', fault: 'host-key' });
  });

  it('errors that are not a hop’s connect failure are not mapped (they are rethrown)', () => {
    expect(connectFailureOf(new Interrupted('SIGINT'), names)).toBeUndefined();
    expect(
      connectFailureOf(new EnvError('x', 'y', { host: 'local', step: 'connect' }), names),
    ).toBeUndefined();
    expect(
      connectFailureOf(new EnvError('x', 'y', { host: 'box', step: 'start relay' }), names),
    ).toBeUndefined();
  });
});

describe('assemble', () => {
  it('skips every check after the first failure, saying which one it was, and reports it first', () => {
    const e = forwardTimeout(box, inner, 10_000);
    const r = assemble('box', names, 'udp', connectResults(route, connectFailureOf(e, names)));
    expect(r.firstFailure).toMatchObject({ host: 'box', check: 'reachable', status: 'fail' });
    const after = r.checks.slice(r.checks.indexOf(r.firstFailure as CheckResult) + 1);
    expect(after.length).toBe(7);
    for (const c of after) {
      expect(c.status).toBe('skip');
      expect(c.detail).toBe('not checked: reachable of box failed');
    }
    expect(r).toMatchObject({ version: 3, target: 'box', route: names, transport: 'udp' });
    expect(doctorExitCode([r])).toBe(1);
  });

  it('all ok gives no first failure and exit 0', () => {
    const ran = checkOrder(['box']).map(({ host, check }): CheckResult => ({
      host,
      check,
      status: 'ok',
      detail: 'fine',
    }));
    const r = assemble('box', ['box'], 'udp', ran);
    expect(r.firstFailure).toBeNull();
    expect(doctorExitCode([r])).toBe(0);
  });

  it('a warning is no failure: exit 0, no first failure', () => {
    const ran = checkOrder(['box']).map(({ host, check }): CheckResult => ({
      host,
      check,
      status: check === 'mosh-versions' ? 'warn' : 'ok',
      detail: 'fine',
    }));
    const r = assemble('box', ['box'], 'udp', ran);
    expect(r.firstFailure).toBeNull();
    expect(doctorExitCode([r])).toBe(0);
  });

  it('refuses a result for a check the route does not have (a bug, not a skip)', () => {
    expect(() =>
      assemble('box', ['box'], 'udp', [{ host: 'elsewhere', check: 'auth', status: 'ok', detail: '' }]),
    ).toThrow(/no check elsewhere auth/);
  });
});

describe('settleTransport', () => {
  const udpFail: CheckResult = {
    host: 'bastion',
    check: 'udp-round-trip',
    status: 'fail',
    detail: 'no echo within 2 s',
    hint: 'let UDP through',
  };
  const tcp = (status: CheckResult['status']): CheckResult => ({
    host: 'box',
    check: 'tcp-round-trip',
    status,
    detail: '',
  });

  it('udp: a failure stays one, and says tcp would work, with the options to use it', () => {
    const [u] = settleTransport([udpFail, tcp('ok')], 'udp', 'box');
    expect(u?.status).toBe('fail');
    expect(u?.detail).toBe('no echo within 2 s; tcp would work (checked)');
    expect(u?.hint).toMatch(/^let UDP through; or use --transport tcp or --transport auto/);
    expect(u?.hint).toContain('mosh.transport: tcp or auto for box');
  });

  it('udp: without a working tcp nothing is promised', () => {
    expect(settleTransport([udpFail, tcp('fail')], 'udp', 'box')[0]).toEqual(udpFail);
  });

  it('auto: a udp-path failure is no failure while tcp works, since auto switches', () => {
    const [u] = settleTransport([udpFail, tcp('ok')], 'auto', 'box');
    expect(u?.status).toBe('skip');
    expect(u?.hint).toBeUndefined();
    expect(u?.detail).toContain('transport auto goes by tcp instead');
  });
});

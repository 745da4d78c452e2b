// diagnose() with a recording runner in place of ssh: which checks run in what
// order, that the round trips really go through sockets (a local UDP echo
// stands in for the target's), and that everything started is stopped, also
// when a step fails or the run is interrupted.
import { createSocket, type Socket } from 'node:dgram';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { diagnose, type DoctorRunner } from '../../src/doctor/run.js';
import type { DoctorReport } from '../../src/doctor/types.js';
import { EnvError, Interrupted } from '../../src/errors.js';
import { forwardError } from '../../src/ssh/hop-errors.js';
import { SOCAT_WARNING } from '../../src/relay/commands.js';
import { LineQueue } from '../../src/transport/line-channel.js';
import { tempTree } from './helpers.js';

const yaml = (transport: string) => `version: 1
defaults: {user: ops}
mosh: {server_ports: 60001-60010, transport: ${transport}}
hosts:
  bastion: {address: 192.0.2.1, relay: {ports: 61001-61010}}
  box: {address: 203.0.113.10, via: [bastion]}
`;
const config = (transport = 'udp', boxExtra = '') => {
  const text = boxExtra
    ? yaml(transport).replace(
        'box: {address: 203.0.113.10, via: [bastion]}',
        `box: {address: 203.0.113.10, via: [bastion], ${boxExtra}}`,
      )
    : yaml(transport);
  const dir = tempTree({ 'moshproxy.yaml': text });
  return loadConfig([join(dir, 'moshproxy.yaml')], { USER: 'ops' }).config;
};

let echo: Socket;
let echoPort = 0;
let deadPort = 0;
beforeAll(async () => {
  echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
  echoPort = echo.address().port;
  // A port that was free a moment ago: nothing answers there.
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  deadPort = s.address().port;
  s.close();
});
afterAll(() => echo.close());

interface FakeOptions {
  connectError?: Error;
  relayError?: EnvError;
  /** Where the first relay "listens": the echo (UDP passes) or a dead port (UDP dropped). */
  udpPasses?: boolean;
  abortAfter?: string;
  abort?: AbortController;
  /** Neither python3 nor perl on the bastion: the relay starts (as socat) only when wired. */
  socatOnly?: boolean;
  /** What stopping a relay answers (default stopped). */
  stopOutcome?: 'stopped' | 'unknown';
  /** What the target answers for a forward, by spec text (default: allowed). */
  forwardErrors?: Record<string, EnvError>;
  /** Whether the target gets the agent (default yes). */
  agent?: boolean;
}

/** Records every call; the relay's port and the forwarder's port lead to the local echo or nowhere. */
function fakeRunner(o: FakeOptions = {}) {
  const calls: string[] = [];
  const channels: LineQueue[] = [];
  const call = (what: string): void => {
    calls.push(what);
    if (o.abortAfter === what) o.abort?.abort(new Interrupted('SIGINT'));
  };
  const runner: DoctorRunner = {
    connect: (onReady) => {
      call('connect');
      if (o.connectError) return Promise.reject(o.connectError);
      onReady?.('bastion');
      onReady?.('box');
      return Promise.resolve({ reachedAddress: '127.0.0.1' });
    },
    ask: (host) => {
      call(`ask ${host}`);
      return Promise.resolve({
        stdout:
          'MOSHCTL-DOCTOR SERVER 0 mosh-server (mosh 1.4.0) [build mosh 1.4.0]\nMOSHCTL-DOCTOR LOCALE UTF-8\n',
        stderr: '',
        code: 0,
      });
    },
    openChannel: (host) => {
      call(`echo ${host}`);
      const q = new LineQueue(
        () => undefined,
        () => {
          calls.push('echo ended');
          q.finish();
        },
      );
      q.push(`MOSHCTL-ECHO PORT ${echoPort} RUNTIME python3\n`);
      channels.push(q);
      return Promise.resolve(q);
    },
    startRelay: (step) => {
      call(`relay ${step.host} idle ${step.idleTimeout}`);
      if (o.relayError) return Promise.reject(o.relayError);
      if (o.socatOnly) return Promise.resolve(undefined);
      return Promise.resolve({
        pid: 4242,
        port: o.udpPasses === false ? deadPort : echoPort,
        runtime: 'python3',
      });
    },
    wireRelay: (step, port) => {
      call(`wire ${step.host} to ${port === echoPort ? 'echo' : port}`);
      if (o.socatOnly)
        return Promise.resolve({ pid: 77, port: echoPort, runtime: 'socat', warning: SOCAT_WARNING });
      return Promise.resolve(undefined);
    },
    startForward: (step, server) => {
      call(
        `forward ${step.host} to ${server.address}:${server.port === echoPort ? 'echo' : server.port} idle ${step.idleTimeout}`,
      );
      return Promise.resolve({ port: echoPort, mode: 'tcp', runtime: 'perl' });
    },
    stop: (host, pid, kind) => {
      call(`stop ${kind} ${host} ${pid}`);
      return Promise.resolve(o.stopOutcome ?? 'stopped');
    },
    probeForward: (host, spec) => {
      call(`probe ${host} ${spec.text}`);
      const e = o.forwardErrors?.[spec.text];
      return e ? Promise.reject(e) : Promise.resolve();
    },
    probeAgent: (host) => {
      call(`agent ${host}`);
      return Promise.resolve(o.agent ?? true);
    },
  };
  return { runner, calls };
}

const quick = { count: 2, intervalMs: 20, waitMs: 400 };
/** mosh-client here, as local.ts would find it. */
const client =
  (version = 'mosh-client (mosh 1.4.0) [build mosh 1.4.0]') =>
  (program: string) =>
    Promise.resolve({ state: 'ok' as const, path: `/usr/bin/${program}`, version });
const statuses = (r: DoctorReport) => r.checks.map((c) => `${c.host} ${c.check} ${c.status}`);

describe('diagnose', () => {
  it('a healthy route: every check ok, tcp not needed, the relay and echo stopped', async () => {
    const { runner, calls } = fakeRunner();
    const r = await diagnose(config(), 'box', runner, {
      log: () => undefined,
      probe: quick,
      localClient: client(),
    });
    expect(statuses(r).filter((s) => !s.endsWith(' ok'))).toEqual(['box tcp-round-trip skip']);
    expect(r.checks.find((c) => c.check === 'mosh-client')?.detail).toBe(
      '/usr/bin/mosh-client: mosh-client (mosh 1.4.0) [build mosh 1.4.0]',
    );
    expect(r.checks.find((c) => c.check === 'mosh-versions')?.detail).toBe(
      'mosh-client 1.4.0 here, mosh-server 1.4.0 on box',
    );
    expect(r.firstFailure).toBeNull();
    expect(calls).toEqual([
      'connect',
      'ask box',
      'echo box',
      'relay bastion idle 30',
      'wire bastion to echo',
      'stop relay bastion 4242',
      'echo ended',
    ]);
  });

  it('a relay whose host cannot tell whether it still runs: said, with when it exits by itself', async () => {
    const { runner } = fakeRunner({ stopOutcome: 'unknown' });
    const log: string[] = [];
    await diagnose(config(), 'box', runner, { log: (l) => log.push(l), probe: quick });
    expect(log).toContain(
      'could not tell whether the relay on bastion (pid 4242) still runs; it exits by itself within 30 s',
    );
  });

  it('UDP dropped: the round trip fails naming the first hop, tcp is tried and works, the hint says how to use it', async () => {
    const { runner, calls } = fakeRunner({ udpPasses: false });
    const r = await diagnose(config(), 'box', runner, { log: () => undefined, probe: quick });
    expect(r.firstFailure).toMatchObject({ host: 'bastion', check: 'udp-round-trip', status: 'fail' });
    expect(r.firstFailure?.detail).toMatch(
      /^no echo within 0.4 s of 2 datagrams to bastion \(127\.0\.0\.1:\d+\); tcp would work/,
    );
    expect(r.firstFailure?.hint).toContain('--transport tcp or --transport auto');
    expect(r.checks.find((c) => c.check === 'tcp-round-trip')).toMatchObject({ status: 'ok' });
    expect(calls).toContain('forward box to 127.0.0.1:echo idle 30');
    expect(calls.slice(-2)).toEqual(['stop relay bastion 4242', 'echo ended']);
  });

  it('transport auto with UDP dropped: not a failure, since auto goes by tcp', async () => {
    const { runner } = fakeRunner({ udpPasses: false });
    const r = await diagnose(config('auto'), 'box', runner, { log: () => undefined, probe: quick });
    expect(r.firstFailure).toBeNull();
    expect(r.checks.find((c) => c.check === 'udp-round-trip')?.status).toBe('skip');
  });

  it('a bastion that runs nothing: its relay runtime fails, udp is not tried, tcp is', async () => {
    const relayError = new EnvError(
      'the relay command on bastion ended without a word',
      'use --transport tcp',
      {
        host: 'bastion',
        step: 'start relay',
      },
    );
    const { runner, calls } = fakeRunner({ relayError });
    const r = await diagnose(config(), 'box', runner, { log: () => undefined, probe: quick });
    expect(r.firstFailure).toMatchObject({ host: 'bastion', check: 'relay-runtime' });
    expect(statuses(r).slice(-2)).toEqual(['bastion udp-round-trip skip', 'box tcp-round-trip ok']);
    expect(calls.filter((c) => c.startsWith('stop'))).toEqual([]);
    expect(calls).toContain('echo ended');
  });

  it('socat only on the bastion: it starts when wired, is reported as the weaker relay, and is stopped', async () => {
    const { runner, calls } = fakeRunner({ socatOnly: true });
    const r = await diagnose(config(), 'box', runner, { log: () => undefined, probe: quick });
    expect(r.firstFailure).toBeNull();
    expect(r.checks.find((c) => c.check === 'relay-runtime')?.detail).toBe(
      `socat, on UDP port ${echoPort}; socat relay (a fallback for python3 >= 3.6)`,
    );
    expect(calls).toContain('stop relay bastion 77');
  });

  it('transport tcp: nothing is started on the bastion', async () => {
    const { runner, calls } = fakeRunner();
    const r = await diagnose(config('tcp'), 'box', runner, { log: () => undefined, probe: quick });
    expect(r.firstFailure).toBeNull();
    expect(calls.some((c) => c.startsWith('relay'))).toBe(false);
    expect(statuses(r).filter((s) => s.includes('relay-runtime') || s.includes('round-trip'))).toEqual([
      'bastion relay-runtime skip',
      'bastion udp-round-trip skip',
      'box tcp-round-trip ok',
    ]);
  });

  it('mosh-client and mosh-server across 1.4: a warning, with what is missing and the fix; doctor still passes', async () => {
    const { runner } = fakeRunner();
    const r = await diagnose(config(), 'box', runner, {
      log: () => undefined,
      probe: quick,
      localClient: client('mosh-client (mosh 1.3.2) [build mosh 1.3.2]'),
    });
    expect(r.firstFailure).toBeNull();
    expect(r.checks.find((c) => c.check === 'mosh-versions')).toEqual({
      host: 'box',
      check: 'mosh-versions',
      status: 'warn',
      detail:
        'mosh-client 1.3.2 here, mosh-server 1.4.0 on box: the session has what 1.3.2 has, so no true colour (24-bit) and no OSC 52 clipboard, which came with 1.4',
      hint: 'update mosh on this machine to 1.4 or later (your package manager; brew upgrade mosh on macOS)',
    });
  });

  it('a mosh-client that is not there fails its check (up would refuse); the route is checked all the same', async () => {
    const { runner } = fakeRunner();
    const r = await diagnose(config(), 'box', runner, {
      log: () => undefined,
      probe: quick,
      localClient: (program) => Promise.resolve({ state: 'missing', path: program }),
    });
    expect(r.firstFailure).toMatchObject({
      host: 'local',
      check: 'mosh-client',
      detail: 'mosh-client is not installed on this machine',
    });
    expect(r.checks.find((c) => c.check === 'mosh-server')?.status).toBe('ok');
    expect(r.checks.find((c) => c.check === 'mosh-versions')?.status).toBe('skip');
  });

  it('a refused forward: named on the bastion, everything after it skipped, nothing started', async () => {
    const c = config();
    const [bastion, box] = [c.hosts.bastion, c.hosts.box];
    if (!bastion || !box) throw new Error('no hosts');
    const { runner, calls } = fakeRunner({
      connectError: forwardError(Object.assign(new Error('denied'), { reason: 1 }), box, bastion),
    });
    const r = await diagnose(c, 'box', runner, { log: () => undefined, probe: quick });
    expect(r.firstFailure).toMatchObject({ host: 'bastion', check: 'forwarding' });
    expect(statuses(r).slice(5)).toEqual([
      'bastion relay-runtime skip',
      'box reachable skip',
      'box host-key skip',
      'box auth skip',
      'box mosh-server skip',
      'box mosh-versions skip',
      'box locale skip',
      'bastion udp-round-trip skip',
      'box tcp-round-trip skip',
    ]);
    expect(calls).toEqual(['connect']);
  });

  it('interrupted after the relay started: rejects with the interruption, having stopped relay and echo', async () => {
    const abort = new AbortController();
    const { runner, calls } = fakeRunner({ abort, abortAfter: 'wire bastion to echo' });
    await expect(
      diagnose(config(), 'box', runner, { log: () => undefined, probe: quick, signal: abort.signal }),
    ).rejects.toBeInstanceOf(Interrupted);
    expect(calls.slice(-2)).toEqual(['stop relay bastion 4242', 'echo ended']);
  });
});

describe('diagnose: a target with port forwards and the agent', () => {
  const withForwards = () =>
    config(
      'udp',
      'forward: {local: ["8080:localhost:80"], remote: ["9000:localhost:22"]}, forward_agent: true',
    );

  it('asks the target for each forward and the agent after mosh-server and the locale, and says they pass', async () => {
    const { runner, calls } = fakeRunner();
    const r = await diagnose(withForwards(), 'box', runner, {
      log: () => undefined,
      probe: quick,
      localClient: client(),
    });
    expect(statuses(r).filter((x) => x.startsWith('box '))).toEqual([
      'box reachable ok',
      'box host-key ok',
      'box auth ok',
      'box mosh-server ok',
      'box mosh-versions ok',
      'box locale ok',
      'box port-forwards ok',
      'box agent-forwarding ok',
      'box tcp-round-trip skip',
    ]);
    expect(calls.filter((c) => c.startsWith('probe') || c.startsWith('agent'))).toEqual([
      'probe box -L 8080:localhost:80',
      'probe box -R 9000:localhost:22',
      'agent box',
    ]);
    expect(r.firstFailure).toBeNull();
  });

  it('a forward the target prohibits fails with its fix; one whose destination is only not up yet warns', async () => {
    const prohibited = new EnvError(
      'box refused to open a connection to localhost:80: administratively prohibited (AllowTcpForwarding or PermitOpen in the sshd_config of box, or a restriction on the key)',
      'allow it on box: AllowTcpForwarding yes',
      { host: 'box', step: 'forward' },
    );
    const { runner } = fakeRunner({ forwardErrors: { '-L 8080:localhost:80': prohibited }, agent: false });
    const r = await diagnose(withForwards(), 'box', runner, {
      log: () => undefined,
      probe: quick,
      localClient: client(),
    });
    expect(r.firstFailure).toMatchObject({
      host: 'box',
      check: 'port-forwards',
      status: 'fail',
      hint: 'allow it on box: AllowTcpForwarding yes',
    });
    // The spec, where it was asked for (file:line), and the target's refusal.
    expect(r.firstFailure?.detail).toBe(
      `-L 8080:localhost:80 (${r.firstFailure?.detail.match(/\((\S+moshproxy\.yaml:\d+)\)/)?.[1] ?? 'no file:line'}): ${prohibited.message}`,
    );
    expect(r.checks.find((c) => c.check === 'agent-forwarding')).toMatchObject({
      status: 'fail',
      hint: expect.stringContaining('AllowAgentForwarding yes') as unknown,
    });

    const closed = new EnvError(
      'box could not connect to localhost:80: connection refused',
      'check that something listens',
      {
        host: 'box',
        step: 'forward',
      },
    );
    const quiet = fakeRunner({ forwardErrors: { '-L 8080:localhost:80': closed } });
    const w = await diagnose(withForwards(), 'box', quiet.runner, {
      log: () => undefined,
      probe: quick,
      localClient: client(),
    });
    expect(w.checks.find((c) => c.check === 'port-forwards')).toMatchObject({
      status: 'warn',
      detail: 'allowed, but -L 8080:localhost:80: box could not connect to localhost:80: connection refused',
    });
    expect(w.firstFailure).toBeNull();
  });
});

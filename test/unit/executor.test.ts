// The executor with a recording fake runner: the order of side effects, what
// is recorded when, and teardown from the record on every kind of ending.
import { describe, expect, it } from 'vitest';
import type { ListrTask } from 'listr2';
import { EnvError, Interrupted } from '../../src/errors.js';
import { execute, type ExecuteOptions } from '../../src/execute/executor.js';
import type { OnStarted, ProcessKind, Runner } from '../../src/execute/runner.js';
import { teardown } from '../../src/execute/teardown.js';
import { loadConfig } from '../../src/config/load.js';
import { planUp } from '../../src/plan/plan.js';
import type { ForwardStatus } from '../../src/forward/types.js';
import type { AgentStep, ClientProgram, PortForwardStep, ServerStep } from '../../src/plan/types.js';
import { RECORD_VERSION, type SessionRecord } from '../../src/state/record.js';
import { tempTree } from './helpers.js';
import { join } from 'node:path';

const yaml = `version: 1
mosh: {network_timeout: 600}
hosts:
  outer: {address: 192.0.2.1}
  inner: {address: 198.51.100.2, via: [outer]}
  box: {address: 203.0.113.10, via: [inner]}
`;

type FailAt =
  | 'connect'
  | 'connect:box'
  | 'server'
  | 'relay:inner'
  | 'relay:outer'
  | 'client'
  /** The relay on inner says its pid, then its step fails (as when it cannot be wired). */
  | 'after-pid:inner'
  | `forward:${string}`
  | 'agent';

class FakeRunner implements Runner {
  calls: string[] = [];
  constructor(
    private readonly failAt?: FailAt,
    private readonly unreachable: string[] = [],
  ) {}
  private maybeFail(what: FailAt): void {
    if (this.failAt === what) throw new EnvError(`${what} failed`, 'fix it', { step: what });
  }
  /** Opens the hops one by one, a timer tick apart, as a real chain would. */
  async connect(onReady?: (host: string) => void): Promise<{ reachedAddress: string }> {
    this.calls.push('connect');
    this.maybeFail('connect');
    for (const host of ['outer', 'inner', 'box']) {
      await new Promise((r) => setTimeout(r, 5));
      this.maybeFail(`connect:${host}` as FailAt);
      onReady?.(host);
    }
    this.calls.push('connected');
    return { reachedAddress: '192.0.2.1' };
  }
  /** As the real runner: the keeper's pid first, mosh-server's once it printed it. */
  async startServer(
    step: ServerStep,
    onStarted?: OnStarted,
  ): Promise<{ pid: number; port: number; key: string; bound?: string }> {
    this.calls.push('server');
    onStarted?.({ kind: 'keeper', pid: 99, started: '5' });
    await new Promise((r) => setTimeout(r, 1));
    this.maybeFail('server');
    onStarted?.({ kind: 'mosh-server', pid: 100, port: 60001 });
    // As the keeper reports it for -s: the address the ssh connection came in on.
    const bound = step.bind.mode === 'ssh' ? { bound: '203.0.113.5' } : {};
    return { pid: 100, port: 60001, key: 'k'.repeat(22), ...bound };
  }
  wireRelay(step: { host: string }, forward: number): Promise<undefined> {
    this.calls.push(`wire ${step.host} → ${forward}`);
    return Promise.resolve(undefined);
  }
  startRelay(
    step: { host: string },
    forward?: number,
    onStarted?: OnStarted,
  ): Promise<{ pid: number; port: number; runtime: 'python3' }> {
    this.calls.push(`relay ${step.host}${forward === undefined ? '' : ` → ${forward}`}`);
    this.maybeFail(`relay:${step.host}` as FailAt);
    const relay = {
      pid: step.host === 'inner' ? 200 : 300,
      port: step.host === 'inner' ? 62001 : 61001,
      runtime: 'python3',
    } as const;
    onStarted?.({ kind: 'relay', relay });
    this.maybeFail(`after-pid:${step.host}` as FailAt);
    return Promise.resolve(relay);
  }
  startForward(
    _step: unknown,
    server: { address: string; port: number },
    udp?: { address: string; port: number },
  ): Promise<{ port: number; mode: 'udp' | 'tcp'; runtime?: string }> {
    this.calls.push(
      `forward → ${server.address}:${server.port}${udp ? ` udp first → ${udp.address}:${udp.port}` : ''}`,
    );
    this.maybeFail('forward' as FailAt);
    return Promise.resolve(
      udp ? { port: 50000, mode: 'udp' } : { port: 50000, mode: 'tcp', runtime: 'python3' },
    );
  }
  startPortForward(step: PortForwardStep, onStatus: (s: ForwardStatus) => void): Promise<ForwardStatus> {
    this.calls.push(`port-forward ${step.spec.text}`);
    if (this.failAt === `forward:${step.spec.text}`)
      return Promise.reject(new EnvError(`${step.spec.text}: address in use`, 'pick another port', {}));
    const status = { text: step.spec.text, listening: true, open: 0, total: 0, broken: 0, refused: 0 };
    this.forwardStatus.push(onStatus);
    return Promise.resolve(status);
  }
  forwardStatus: ((s: ForwardStatus) => void)[] = [];
  startAgent(step: AgentStep): Promise<void> {
    this.calls.push(`agent ${step.host} ${step.socket}`);
    if (this.failAt === 'agent')
      return Promise.reject(new EnvError('box did not forward the agent', 'AllowAgentForwarding', {}));
    return Promise.resolve();
  }
  unlinkAgent(host: string, socket: string): Promise<'removed'> {
    this.calls.push(`unlink-agent ${host} ${socket}`);
    return Promise.resolve('removed');
  }
  runClient(program: ClientProgram, address: string, port: number, key: string): Promise<number> {
    const env = Object.entries(program.env).map(([k, v]) => ` ${k}=${v}`);
    const path = program.path === 'mosh-client' ? '' : ` ${program.path}`;
    this.calls.push(`client${path} ${address}:${port} key=${key.length}${env.join('')}`);
    this.maybeFail('client');
    return Promise.resolve(7);
  }
  alive(): Promise<'alive'> {
    return Promise.resolve('alive');
  }
  stop(host: string, pid: number, kind: ProcessKind): Promise<'stopped'> {
    this.calls.push(`stop ${kind} ${host} ${pid}`);
    if (this.unreachable.includes(host)) throw new EnvError(`${host} unreachable`, 'later', { host });
    return Promise.resolve('stopped');
  }
  close(): Promise<void> {
    this.calls.push('close');
    return Promise.resolve();
  }
}

function setup(
  runner: FakeRunner,
  interrupted?: () => NodeJS.Signals | undefined,
  transport?: 'udp' | 'tcp' | 'auto',
) {
  const dir = tempTree({ 'moshproxy.yaml': yaml });
  const { config } = loadConfig([join(dir, 'moshproxy.yaml')], {});
  const plan = planUp(config, 'box', {}, transport ? { transport } : {});
  const record: SessionRecord = {
    version: RECORD_VERSION,
    id: 'box-1',
    name: 'box',
    configFiles: [],
    createdAt: '',
    pid: 1,
    machine: 'm',
    route: [],
    relays: [],
    networkTimeout: 600,
  };
  const saved: string[] = [];
  let forgotten = false;
  const logs: string[] = [];
  const options: ExecuteOptions = {
    runner,
    record,
    save: (r) =>
      saved.push(
        JSON.stringify({
          ...(r.keeper ? { keeper: r.keeper.pid } : {}),
          server: r.server?.pid ?? null,
          relays: r.relays.map((x) => x.pid),
        }),
      ),
    forget: () => (forgotten = true),
    interrupted: interrupted ?? (() => undefined),
    log: (l) => logs.push(l),
    runTasks: async (tasks: ListrTask[]) => {
      for (const t of tasks)
        await (t.task as (c: unknown, t: unknown) => Promise<void>)({}, { title: '', output: '' });
    },
  };
  return { plan, options, saved, logs, record, forgotten: () => forgotten };
}

/** Whether `a` came before `b` in the calls. */
function before(calls: string[], a: string, b: string): boolean {
  return calls.indexOf(a) >= 0 && calls.indexOf(b) > calls.indexOf(a);
}

describe('execute', () => {
  it('runs each step when what it depends on is done: server and relays at once, each relay wired to the port after it, then the client, then teardown', async () => {
    const runner = new FakeRunner();
    const { plan, options, saved, record, forgotten } = setup(runner);
    const outcome = await execute(plan, options);
    const calls = runner.calls;
    expect([...calls].sort()).toEqual(
      [
        'connect',
        'connected',
        'server',
        'relay outer',
        'relay inner',
        'wire outer → 62001',
        'wire inner → 60001',
        'client 192.0.2.1:61001 key=22',
        'stop relay outer 300',
        'stop relay inner 200',
        'stop mosh-server box 100',
        'close',
      ].sort(),
    );
    // The relays do not wait for the server nor for each other; each wire waits for the port it names.
    expect(calls.indexOf('relay inner')).toBeLessThan(calls.indexOf('wire inner → 60001'));
    expect(before(calls, 'server', 'wire inner → 60001')).toBe(true);
    expect(before(calls, 'relay inner', 'wire outer → 62001')).toBe(true);
    // A relay starts as soon as its hop is open, while the hops behind it still connect.
    expect(before(calls, 'relay outer', 'connected')).toBe(true);
    expect(before(calls, 'relay inner', 'connected')).toBe(true);
    for (const c of ['wire outer → 62001', 'wire inner → 60001', 'server'])
      expect(before(calls, c, 'client 192.0.2.1:61001 key=22')).toBe(true);
    expect(before(calls, 'client 192.0.2.1:61001 key=22', 'stop mosh-server box 100')).toBe(true);
    expect(calls.at(-1)).toBe('close');
    expect(outcome).toEqual({ clientCode: 7, teardown: { stopped: expect.any(Array) as unknown, left: [] } });
    // Recorded as soon as each process exists (relays kept client side first), removed as each is stopped.
    expect(saved).toContain('{"server":100,"relays":[300,200]}');
    expect(saved.at(-1)).toBe('{"server":null,"relays":[]}');
    expect(record.relays).toEqual([]);
    expect(forgotten()).toBe(true);
  });

  it.each([
    ['connect', []],
    ['connect:box', ['stop relay outer 300', 'stop relay inner 200']],
    ['server', ['stop relay outer 300', 'stop relay inner 200']],
    ['relay:inner', ['stop relay outer 300', 'stop mosh-server box 100']],
    ['relay:outer', ['stop relay inner 200', 'stop mosh-server box 100']],
    ['client', ['stop relay outer 300', 'stop relay inner 200', 'stop mosh-server box 100']],
  ] as const)('a failure at %s stops exactly what was started', async (failAt, stops) => {
    const runner = new FakeRunner(failAt);
    const { plan, options, forgotten } = setup(runner);
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeInstanceOf(EnvError);
    expect(outcome.clientCode).toBeUndefined();
    expect(runner.calls.filter((c) => c.startsWith('stop')).sort()).toEqual([...stops].sort());
    expect(runner.calls.at(-1)).toBe('close');
    // mosh-client runs only after every step of setup succeeded.
    if (failAt !== 'client') expect(runner.calls.some((c) => c.startsWith('client'))).toBe(false);
    expect(forgotten()).toBe(true);
  });

  it('starts no step after a signal arrived, lets the ones under way finish, and tears down what they started', async () => {
    const runner = new FakeRunner();
    let signal: NodeJS.Signals | undefined;
    const original = runner.startServer.bind(runner);
    runner.startServer = async (step) => {
      const r = await original(step);
      signal = 'SIGINT';
      return r;
    };
    const { plan, options } = setup(runner, () => signal);
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeInstanceOf(Interrupted);
    // The inner relay's wire waits for the server's port, so it never starts; nor does the client.
    expect(runner.calls.some((c) => c.startsWith('wire inner') || c.startsWith('client'))).toBe(false);
    expect(runner.calls.filter((c) => c.startsWith('stop')).sort()).toEqual([
      'stop mosh-server box 100',
      'stop relay inner 200',
      'stop relay outer 300',
    ]);
  });

  it('records each process the moment its pid is known: the shell mosh-server starts in, then mosh-server in its place', async () => {
    const runner = new FakeRunner();
    const { plan, options, saved } = setup(runner);
    await execute(plan, options);
    const keeper = saved.findIndex((x) => x.includes('"keeper":99'));
    const server = saved.findIndex((x) => x.includes('"server":100'));
    expect(keeper).toBeGreaterThanOrEqual(0);
    expect(server).toBeGreaterThan(keeper);
    // Once mosh-server is recorded, its keeper is not: it ends with mosh-server.
    expect(saved.slice(server).some((x) => x.includes('keeper'))).toBe(false);
  });

  it('a mosh-server that does not start leaves no keeper in the record (it ends by itself)', async () => {
    const runner = new FakeRunner('server');
    const { plan, options, saved, record } = setup(runner);
    await execute(plan, options);
    expect(saved.some((x) => x.includes('"keeper":99'))).toBe(true);
    expect(record.keeper).toBeUndefined();
    expect(runner.calls.some((c) => c.startsWith('stop keeper'))).toBe(false);
  });

  it('a relay whose step fails after it said its pid is stopped all the same', async () => {
    const runner = new FakeRunner('after-pid:inner');
    const { plan, options, forgotten } = setup(runner);
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeInstanceOf(EnvError);
    expect(runner.calls).toContain('stop relay inner 200');
    expect(forgotten()).toBe(true);
  });

  it('teardown stops a keeper a record names (mosh-server was being started), and drops it from the record', async () => {
    const runner = new FakeRunner();
    const { record } = setup(runner);
    record.keeper = { host: 'box', pid: 99, started: '5' };
    record.relays = [{ host: 'outer', pid: 300, port: 61001, runtime: 'python3' }];
    const saved: (number | undefined)[] = [];
    const report = await teardown(record, runner, {
      save: (r) => saved.push(r.keeper?.pid),
      log: () => undefined,
    });
    expect(runner.calls).toContain('stop keeper box 99');
    expect(report.stopped).toContain('mosh-server being started on box (its shell, pid 99) (stopped)');
    expect(record.keeper).toBeUndefined();
    expect(report.left).toEqual([]);
  });

  it('keeps in the record what it could not stop, and says how to finish', async () => {
    const runner = new FakeRunner(undefined, ['box']);
    const { plan, options, record, logs, forgotten } = setup(runner);
    const outcome = await execute(plan, options);
    expect(outcome.teardown.left).toEqual([
      { what: 'mosh-server on box (pid 100, UDP 60001)', why: 'box unreachable' },
    ]);
    expect(record.server?.pid).toBe(100);
    expect(record.relays).toEqual([]);
    expect(forgotten()).toBe(false);
    expect(logs.at(-1)).toBe(
      'what is left exits on its own after 600 s without a client; or run "moshctl down box" again',
    );
  });

  it('tcp: no relay; the forwarder after the server, then mosh-client on the loopback port it gave', async () => {
    const runner = new FakeRunner();
    const { plan, options } = setup(runner, undefined, 'tcp');
    const outcome = await execute(plan, options);
    expect(outcome.clientCode).toBe(7);
    expect(runner.calls.filter((c) => c.startsWith('relay') || c.startsWith('wire'))).toEqual([]);
    const calls = runner.calls;
    // transport tcp: mosh-server listens on the loopback (-i 127.0.0.1), where the forwarder sends.
    expect(before(calls, 'server', 'forward → 127.0.0.1:60001')).toBe(true);
    expect(before(calls, 'forward → 127.0.0.1:60001', 'client 127.0.0.1:50000 key=22')).toBe(true);
  });

  it('auto: the forward step sends by UDP to the first relay once it is wired, and mosh-client uses the loopback port', async () => {
    const runner = new FakeRunner();
    const { plan, options, logs } = setup(runner, undefined, 'auto');
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeUndefined();
    expect(outcome.clientCode).toBe(7);
    // The forwarder, should tcp take over, sends where mosh-server bound with -s (as it reported).
    const forward = 'forward → 203.0.113.5:60001 udp first → 192.0.2.1:61001';
    expect(before(runner.calls, 'wire outer → 62001', forward)).toBe(true);
    expect(before(runner.calls, forward, 'client 127.0.0.1:50000 key=22')).toBe(true);
    expect(logs.some((l) => l.includes('switched'))).toBe(false);
  });

  it('runs the mosh-client the plan names, with the variables it asks for', async () => {
    const runner = new FakeRunner();
    const { plan, options } = setup(runner);
    const client = plan.steps.find((s) => s.kind === 'client');
    if (client?.kind !== 'client') throw new Error('no client step');
    client.program = { path: '/opt/mosh/bin/mosh-client', env: { MOSH_PREDICTION_DISPLAY: 'always' } };
    expect((await execute(plan, options)).clientCode).toBe(7);
    expect(runner.calls).toContain(
      'client /opt/mosh/bin/mosh-client 192.0.2.1:61001 key=22 MOSH_PREDICTION_DISPLAY=always',
    );
  });

  it('a mosh-server that could not bind where -s told it: the warning is said, the forwarder uses the loopback', async () => {
    const runner = new FakeRunner();
    const original = runner.startServer.bind(runner);
    const warning =
      'mosh-server could not listen on 203.0.113.5 (bind: x) and listens on every IPv4 address instead';
    runner.startServer = async (step) => ({ ...(await original(step)), warning });
    const { plan, options, logs } = setup(runner, undefined, 'auto');
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeUndefined();
    expect(runner.calls).toContain('forward → 127.0.0.1:60001 udp first → 192.0.2.1:61001');
    expect(logs).toContain(`warning: box: ${warning}`);
  });

  it('auto: a relay that cannot start means tcp from the start, not a failed up', async () => {
    const runner = new FakeRunner('relay:inner');
    const { plan, options, record, logs } = setup(runner, undefined, 'auto');
    const titles: string[] = [];
    options.runTasks = async (tasks: ListrTask[]) => {
      for (const t of tasks) {
        const task = { title: '', output: '' };
        await (t.task as (c: unknown, t: unknown) => Promise<void>)({}, task);
        titles.push(task.title);
      }
    };
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeUndefined();
    expect(outcome.clientCode).toBe(7);
    expect(runner.calls).toContain('forward → 203.0.113.5:60001');
    expect(runner.calls.some((c) => c.includes('udp first'))).toBe(false);
    expect(runner.calls).toContain('client 127.0.0.1:50000 key=22');
    expect(titles).toContain('relay on inner failed, so tcp: relay:inner failed');
    expect(titles.some((t) => t.startsWith('transport auto: tcp; forwarder on box'))).toBe(true);
    expect(logs).toContain('transport auto: tcp from the start, relay on inner failed: relay:inner failed');
    // What did start is stopped all the same.
    expect(runner.calls).toContain('stop relay outer 300');
    expect(record.relays).toEqual([]);
  });

  it('auto: a signal during a relay step still stops up', async () => {
    const runner = new FakeRunner();
    let sig: NodeJS.Signals | undefined;
    const { plan, options } = setup(runner, () => sig, 'auto');
    options.beforeStep = (kind) => {
      if (kind === 'relay') sig = 'SIGINT';
      return Promise.resolve();
    };
    const outcome = await execute(plan, options);
    expect(outcome.error).toBeInstanceOf(Interrupted);
    expect(runner.calls.some((c) => c.startsWith('forward') || c.startsWith('client'))).toBe(false);
  });
});

/** The plan of `setup`, with forwards and the agent as the planner adds them: after the target's connect step. */
function withForwards(plan: ReturnType<typeof planUp>, required = false): ReturnType<typeof planUp> {
  const target = plan.steps.find((s) => s.kind === 'connect' && s.host === 'box');
  if (!target) throw new Error('no connect step for box');
  const clientAt = plan.steps.findIndex((s) => s.kind === 'client');
  const forward = (text: string, id: number): PortForwardStep => ({
    kind: 'port-forward',
    id,
    host: 'box',
    cause: `${text} (command line)`,
    dependsOn: [target.id],
    required,
    spec: {
      kind: 'local',
      listen: { port: 8080 },
      to: { host: 'localhost', port: 80 },
      text,
      source: 'command line',
    },
  });
  const agent: AgentStep = {
    kind: 'agent',
    id: 92,
    host: 'box',
    cause: 'agent (-A)',
    dependsOn: [target.id],
    socket: '~/.moshctl/agent/box.sock',
    source: '-A',
  };
  const steps = [...plan.steps];
  steps.splice(clientAt, 0, forward('-L 8080:localhost:80', 90), forward('-L 9090:localhost:90', 91), agent);
  return { ...plan, steps };
}

describe('execute: forwards and the agent', () => {
  it('sets up each forward and the agent once the target is open, records them, and removes the agent link at the end', async () => {
    const runner = new FakeRunner();
    const { plan, options, record } = setup(runner);
    const outcome = await execute(withForwards(plan), options);
    expect(outcome.clientCode).toBe(7);
    const calls = runner.calls;
    for (const c of ['port-forward -L 8080:localhost:80', 'port-forward -L 9090:localhost:90'])
      expect(before(calls, c, 'client 192.0.2.1:61001 key=22')).toBe(true);
    expect(before(calls, 'agent box ~/.moshctl/agent/box.sock', 'client 192.0.2.1:61001 key=22')).toBe(true);
    expect(before(calls, 'unlink-agent box ~/.moshctl/agent/box.sock', 'close')).toBe(true);
    expect(record.forwards?.map((f) => [f.text, f.listening])).toEqual([
      ['-L 8080:localhost:80', true],
      ['-L 9090:localhost:90', true],
    ]);
    expect(record.agent).toBeUndefined();
  });

  it('a forward that cannot be set up is warned about and the session goes on, as with ssh', async () => {
    const runner = new FakeRunner('forward:-L 9090:localhost:90');
    const { plan, options, logs, record } = setup(runner);
    const outcome = await execute(withForwards(plan), options);
    expect(outcome.error).toBeUndefined();
    expect(outcome.clientCode).toBe(7);
    expect(logs).toContain(
      'warning: -L 9090:localhost:90 (command line) is not forwarded: -L 9090:localhost:90: address in use',
    );
    expect(record.forwards?.[1]).toMatchObject({
      listening: false,
      lastError: '-L 9090:localhost:90: address in use',
    });
  });

  it('with ExitOnForwardFailure the same failure ends up, and what was started is stopped', async () => {
    const runner = new FakeRunner('forward:-L 9090:localhost:90');
    const { plan, options, forgotten } = setup(runner);
    const outcome = await execute(withForwards(plan, true), options);
    expect(outcome.error).toBeInstanceOf(EnvError);
    expect(runner.calls.some((c) => c.startsWith('client'))).toBe(false);
    expect(runner.calls.filter((c) => c.startsWith('stop')).sort()).toEqual(
      ['stop relay outer 300', 'stop relay inner 200', 'stop mosh-server box 100'].sort(),
    );
    expect(forgotten()).toBe(true);
  });

  it('an agent the target does not accept is warned about; the shell still starts', async () => {
    const runner = new FakeRunner('agent');
    const { plan, options, logs } = setup(runner);
    const outcome = await execute(withForwards(plan), options);
    expect(outcome.clientCode).toBe(7);
    expect(logs).toContain('warning: the agent is not forwarded to box: box did not forward the agent');
  });
});

// The session's forwards as one: consumers from plan steps, listeners bound
// all or none, one status callback throttled for the record.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EnvError } from '../../src/errors.js';
import { AgentLink } from '../../src/execute/forward/agent.js';
import { LocalForward } from '../../src/execute/forward/local.js';
import { RemoteForward } from '../../src/execute/forward/remote.js';
import { ForwardSet, type ForwardSetStatus } from '../../src/execute/forward/set.js';
import type { ForwardSpec } from '../../src/forward/types.js';
import type { AgentStep, PortForwardStep } from '../../src/plan/types.js';
import { echo, FakeChain, FakeKept, roundTrip, tcpServer, until } from './forward-fakes.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let id = 0;
const step = (spec: Omit<ForwardSpec, 'source'>): PortForwardStep => ({
  id: ++id,
  kind: 'port-forward',
  required: false,
  host: 'target',
  cause: 'asked for',
  dependsOn: [1],
  spec: { ...spec, source: 'command line' },
});
const agentStep: AgentStep = {
  id: 99,
  kind: 'agent',
  host: 'target',
  cause: '-A',
  dependsOn: [1],
  socket: '~/.moshctl/agent/s.sock',
  source: '-A',
};

function set(
  steps: (PortForwardStep | AgentStep)[],
  onChange?: (s: ForwardSetStatus) => void,
  throttleMs = 100,
) {
  const kept = new FakeKept();
  const fs = new ForwardSet(steps, { kept, ...(onChange ? { onChange } : {}), throttleMs });
  cleanups.push(() => fs.close());
  return { fs, kept };
}

describe('ForwardSet', () => {
  it('makes a consumer per step, in plan order', () => {
    const { fs } = set([
      step({ kind: 'local', listen: { port: 0 }, to: { host: 'db', port: 5432 }, text: '-L 0:db:5432' }),
      agentStep,
      step({
        kind: 'remote',
        listen: { port: 8080 },
        to: { host: 'localhost', port: 80 },
        text: '-R 8080:localhost:80',
      }),
      step({ kind: 'dynamic', listen: { port: 0 }, text: '-D 0' }),
    ]);
    expect(fs.consumers.map((c) => c.constructor)).toEqual([
      LocalForward,
      AgentLink,
      RemoteForward,
      LocalForward,
    ]);
    expect(fs.consumers.map((c) => [c.name, c.host])).toEqual([
      ['-L 0:db:5432', 'target'],
      ['agent', 'target'],
      ['-R 8080:localhost:80', 'target'],
      ['-D 0', 'target'],
    ]);
    expect(fs.statuses().map((s) => s.text)).toEqual(['-L 0:db:5432', '-R 8080:localhost:80', '-D 0']);
    expect(fs.agentStatus()).toEqual({ host: 'target', socket: '~/.moshctl/agent/s.sock', up: false });
  });

  it('binds all listeners or none, naming every one that failed', async () => {
    const a = await tcpServer(() => {});
    const b = await tcpServer(() => {});
    cleanups.push(a.close, b.close);
    const { fs } = set([
      step({ kind: 'local', listen: { port: 0 }, to: { host: 'db', port: 1 }, text: '-L free' }),
      step({ kind: 'local', listen: { port: a.port }, to: { host: 'db', port: 1 }, text: '-L a' }),
      step({ kind: 'dynamic', listen: { port: b.port }, text: '-D b' }),
    ]);
    const err = (await fs.start().catch((e: unknown) => e)) as EnvError;
    expect(err).toBeInstanceOf(EnvError);
    expect(err.message.split('\n')).toEqual([
      `-L a (command line): cannot listen on 127.0.0.1:${a.port}: the address is in use`,
      `-D b (command line): cannot listen on 127.0.0.1:${b.port}: the address is in use`,
    ]);
    expect(fs.statuses().map((s) => s.listening)).toEqual([false, false, false]);
  });

  it('tells changes at most every throttle interval, and the last state always', async () => {
    const target = await tcpServer(echo);
    cleanups.push(target.close);
    const seen: { at: number; s: ForwardSetStatus }[] = [];
    const { fs, kept } = set(
      [
        step({
          kind: 'local',
          listen: { port: 0 },
          to: { host: '127.0.0.1', port: target.port },
          text: '-L t',
        }),
      ],
      (s) => seen.push({ at: Date.now(), s }),
      150,
    );
    kept.up(new FakeChain());
    await fs.start();
    const port = fs.statuses()[0]?.port ?? 0;
    await Promise.all(Array.from({ length: 10 }, () => roundTrip({ port }, 'x')));
    await until(() => seen.at(-1)?.s.forwards[0]?.total === 10 && seen.at(-1)?.s.forwards[0]?.open === 0);
    // Each connection changes status several times; the record heard of it a few times only.
    expect(seen.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < seen.length; i++)
      expect((seen[i]?.at ?? 0) - (seen[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(140);
    await fs.close();
    expect(seen.at(-1)?.s.forwards[0]).toMatchObject({ listening: false, total: 10 });
    expect(await new Promise((r) => net.connect({ port }).on('error', () => r('refused')))).toBe('refused');
  });
});

// The healer's decisions with fake relays: a closed channel leads to a check;
// a dead relay comes back on its port; a live one is left alone; an inner
// relay that must move tells the relay before it; the first hop's may not move;
// a relay started again says whether it answers transport auto's probes.
import { describe, expect, it } from 'vitest';
import {
  RelayHealer,
  type HealDeps,
  type RelayRestarted,
  type WatchedRelay,
} from '../../src/execute/relay-heal.js';
import type { RelayStep } from '../../src/plan/types.js';
import type { Liveness } from '../../src/remote/processes.js';
import { LineQueue } from '../../src/transport/line-channel.js';

function channel(sent: string[] = []): LineQueue {
  return new LineQueue(
    (t) => sent.push(t.trim()),
    () => undefined,
  );
}

function relay(host: string, next: string, port: number, pid: number, sent?: string[]): WatchedRelay {
  const step: RelayStep = {
    id: 1,
    kind: 'relay',
    host,
    listen: { from: 61000, to: 61010 },
    runtime: 'auto',
    idleTimeout: 600,
    forwardTo: { host: next, address: `${next}.lab.test`, port: { step: 2 } },
    targetAtStart: false,
    dependsOn: [],
    cause: '',
  };
  return { step, forwardPort: 60001, pid, port, channel: channel(sent), restarts: 0, stopping: false };
}

function deps(relays: WatchedRelay[], alive: Liveness | undefined, free: (port: number) => boolean) {
  const events: RelayRestarted[] = [];
  const trouble: string[] = [];
  const starts: string[] = [];
  let nextPid = 900;
  const d: HealDeps = {
    relays: () => relays,
    alive: () => Promise.resolve(alive),
    start: (step) => {
      starts.push(`${step.host} ${step.listen.from}-${step.listen.to}`);
      if (!free(step.listen.from) && step.listen.from === step.listen.to)
        return Promise.reject(new Error('no free UDP port'));
      return Promise.resolve({
        pid: nextPid++,
        port: step.listen.from === step.listen.to ? step.listen.from : 61009,
        runtime: 'perl',
        channel: channel(),
        // The runner hands the probe key to the relay before the target (transport auto).
        ...(step.forwardTo.host === 'target' ? { probing: true } : {}),
      });
    },
    onRestart: (e) => events.push(e),
    onTrouble: (host, why) => trouble.push(`${host}: ${why}`),
  };
  return { d, events, trouble, starts };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('RelayHealer', () => {
  it('starts a dead relay again on its own port and reports it', async () => {
    const r = relay('bastion', 'target', 61001, 100);
    const { d, events, starts } = deps([r], 'dead', () => true);
    const healer = new RelayHealer(d);
    (r.channel as LineQueue).finish();
    await settle();
    healer.stop();
    expect(starts).toEqual(['bastion 61001-61001']);
    expect(events).toEqual([
      { host: 'bastion', oldPid: 100, relay: { pid: 900, port: 61001, runtime: 'perl' }, restarts: 1 },
    ]);
    expect(r).toMatchObject({ pid: 900, port: 61001, restarts: 1, runtime: 'perl', probing: true });
  });

  it('leaves a relay alone whose channel merely dropped, one it cannot ask about, and one its host cannot tell', async () => {
    for (const alive of ['alive', 'unknown', undefined] as const) {
      const r = relay('bastion', 'target', 61001, 100);
      const { d, events, starts } = deps([r], alive, () => true);
      const healer = new RelayHealer(d);
      (r.channel as LineQueue).finish();
      await settle();
      healer.stop();
      expect(starts).toEqual([]);
      expect(events).toEqual([]);
    }
  });

  it('does not heal a relay being stopped on purpose, nor after stop()', async () => {
    const r = relay('bastion', 'target', 61001, 100);
    const { d, starts } = deps([r], 'dead', () => true);
    const healer = new RelayHealer(d);
    r.stopping = true;
    (r.channel as LineQueue).finish();
    await settle();
    healer.stop();
    expect(starts).toEqual([]);
  });

  it('moves an inner relay whose port was taken and tells the relay before it; the first hop may not move', async () => {
    const sentToOuter: string[] = [];
    const outer = relay('bastion', 'bastion2', 61001, 100, sentToOuter);
    const inner = relay('bastion2', 'target', 62001, 200);
    const { d, events, trouble } = deps([outer, inner], 'dead', () => false);
    const healer = new RelayHealer(d);
    (inner.channel as LineQueue).finish();
    await settle();
    expect(events.map((e) => [e.host, e.relay.port])).toEqual([['bastion2', 61009]]);
    expect(sentToOuter).toEqual(['TO bastion2.lab.test 61009']);
    expect(outer.forwardPort).toBe(61009);
    (outer.channel as LineQueue).finish();
    await settle();
    healer.stop();
    expect(trouble).toEqual(['bastion: no free UDP port']);
  });
});

// The handlers of mosh's own set-up steps: mosh-server, the relays and their
// wiring, and the tcp transport's forwarder. Each does what its step says,
// records what it started, and returns the task's title; the plan decided
// everything else (which step, on which host, after which).
import type { ForwardStep, RelayStep, ServerStep, WireStep } from '../../plan/types.js';
import { hostPort } from '../../host-port.js';
import type { SetupState } from './state.js';

export async function serverStep(step: ServerStep, s: SetupState): Promise<string> {
  await s.check('server');
  const started = await s.o.runner.startServer(step, s.recorder(step.host)).catch((e: unknown) => {
    s.forgetKeeper();
    throw e;
  });
  s.recordServer(step.host, started);
  s.key = started.key;
  // A mosh-server that could not bind where it was told listens on every IPv4 address instead.
  if (started.bound !== undefined && !started.warning) s.bound.set(step.id, started.bound);
  if (started.warning) s.setupNotes.push(`warning: ${step.host}: ${started.warning}`);
  s.portOf(step.id).resolve(started.port);
  return `mosh-server on ${step.host}: UDP ${started.port}, pid ${started.pid}`;
}

export async function relayStep(step: RelayStep, s: SetupState): Promise<string> {
  await s.check('relay');
  const forward = step.targetAtStart ? await s.portOf(step.forwardTo.port.step).promise : undefined;
  const r = await s.o.runner.startRelay(step, forward, s.recorder(step.host));
  if (!r) return `relay on ${step.host}: waits for its next hop (no python3 or perl there)`;
  s.recordRelay(step.host, r);
  s.portOf(step.id).resolve(r.port);
  return `relay on ${step.host} (${r.runtime}): UDP ${r.port}, pid ${r.pid}`;
}

export async function wireStep(step: WireStep, s: SetupState): Promise<string> {
  const relay = s.plan.steps.find((x): x is RelayStep => x.kind === 'relay' && x.id === step.of);
  if (!relay) throw new Error(`bug: wire step ${step.id} of a step that is no relay`);
  const forward = await s.portOf(step.forwardTo.port.step).promise;
  await s.check('wire');
  const started = await s.o.runner.wireRelay(relay, forward, s.recorder(step.host));
  if (started) {
    s.recordRelay(step.host, started);
    s.portOf(relay.id).resolve(started.port);
  }
  return `relay on ${step.host} → ${hostPort(step.forwardTo.address, forward)}`;
}

export async function forwarderStep(step: ForwardStep, s: SetupState): Promise<string> {
  const serverPort = await s.portOf(step.to.port.step).promise;
  // mosh-server bound with -s said where (its step ran: its port is known); else it listens everywhere.
  const to = step.to.address;
  const serverAddress = typeof to === 'string' ? to : (s.bound.get(to.boundBy) ?? '127.0.0.1');
  const via = step.udpFirst?.to;
  const udp =
    via && s.udpFailed === undefined
      ? {
          address: 'local' in via.address ? via.address.local : await s.reachedAddress(),
          port: await s.portOf(via.port.step).promise,
        }
      : undefined;
  await s.check('forward');
  // For status: how the datagrams travel, written as it changes (why auto cannot come back is known once it started).
  const known: { noReturn?: string | undefined } = {};
  const notePath = (now: 'udp' | 'tcp', changes: number): void => {
    const noReturn = known.noReturn;
    s.o.record.path = {
      via: now,
      since: new Date().toISOString(),
      changes,
      ...(noReturn ? { noReturn } : {}),
    };
    s.saveSoon();
  };
  const f = await s.o.runner.startForward(step, { address: serverAddress, port: serverPort }, udp, (c) => {
    notePath(c.now, c.changes);
    // Said after mosh-client exits; a path that keeps changing is summed up, not told change by change.
    if (c.changes <= PATH_NOTES)
      s.notes.push(`transport auto: ${c.now === 'tcp' ? 'switched to tcp' : 'back on udp'}, ${c.why}`);
    else if (c.changes === PATH_NOTES + 1)
      s.notes.push('transport auto: the path went on changing (moshctl status shows how often)');
  });
  s.portOf(step.id).resolve(f.port);
  if (step.udpFirst) known.noReturn = f.noReturn ?? (udp ? undefined : (s.udpFailed ?? 'no UDP path'));
  notePath(f.mode, 0);
  const tcp = `forwarder on ${step.host} (${f.runtime ?? '?'}) ← 127.0.0.1 UDP ${f.port} here, through the ssh chain`;
  if (!step.udpFirst) return tcp;
  if (f.mode === 'udp')
    return `transport auto: UDP through ${via?.host ?? step.host} ← 127.0.0.1 UDP ${f.port} here; tcp stands by`;
  // A choice the user should see even where the task list does not stay on screen.
  s.setupNotes.push(`transport auto: tcp from the start, ${s.udpFailed ?? 'no UDP path'}`);
  return `transport auto: tcp; ${tcp}`;
}

/** Path changes told one by one after the session (transport auto). */
const PATH_NOTES = 6;

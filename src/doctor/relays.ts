// The relays doctor starts on the bastions, as `up` starts and wires them
// (the same runner calls), ending at the echo on the target instead of mosh-server.
import { EnvError } from '../errors.js';
import type { RelayStarted } from '../execute/runner.js';
import type { RelayStep } from '../plan/types.js';
import type { DoctorRunner } from './types.js';
import type { Started } from './started.js';

export interface Launched {
  step: RelayStep;
  relay?: RelayStarted;
  error?: EnvError;
}

/** A relay launched as `up` launches it; socat and nc (and auto's socat fallback) start only when wired. */
export async function launch(runner: DoctorRunner, step: RelayStep, started: Started): Promise<Launched> {
  if (step.targetAtStart) return { step };
  try {
    const relay = await runner.startRelay(step);
    if (relay) started.relay(step.host, relay);
    return { step, ...(relay ? { relay } : {}) };
  } catch (e) {
    if (e instanceof EnvError) return { step, error: e };
    throw e;
  }
}

/**
 * Tells each relay where to forward, from the last (towards the echo) to the
 * first, as `up`'s wire steps do; relays that start only now (socat, nc) start
 * here. A relay that cannot start is its hop's runtime failure; a relay that
 * cannot forward is returned as the udp path's.
 */
export async function wire(
  runner: DoctorRunner,
  relays: Launched[],
  echoPort: number,
  started: Started,
): Promise<EnvError | undefined> {
  if (relays.some((r) => r.error)) return undefined;
  let next = echoPort;
  for (const r of [...relays].reverse()) {
    try {
      if (r.relay) await runner.wireRelay(r.step, next);
      else {
        const relay = r.step.targetAtStart
          ? await runner.startRelay(r.step, next)
          : await runner.wireRelay(r.step, next);
        if (!relay) throw new Error(`bug: no relay on ${r.step.host} after wiring`);
        started.relay(r.step.host, relay);
        r.relay = relay;
      }
    } catch (e) {
      if (!(e instanceof EnvError)) throw e;
      if (e.where.step === 'wire relay') return e;
      r.error = e;
      return undefined;
    }
    next = r.relay.port;
  }
  return undefined;
}

// Starting one relay on a hop. python3 is tried first without probing, since
// nearly every bastion has it: one round trip instead of two. Only when that
// fails is the hop probed for what it has, and the configured choice made.
// The relay prints its ready line once bound, so mosh-client's first packet
// never hits a closed port.
import { EnvError } from '../errors.js';
import type { RelayStep } from '../plan/types.js';
import {
  chooseRuntime,
  parseProbe,
  parseRelayOutput,
  probeRuntimesCommand,
  relayCommand,
  type RelayRuntimeName,
} from '../relay/commands.js';
import { readRelayScript } from '../relay/script.js';
import type { ExecResult, RemoteChain } from '../transport/types.js';
import type { RelayStarted } from './runner.js';

const PROBE_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 15_000;

export async function startRelayOn(
  chain: RemoteChain,
  step: RelayStep,
  forwardPort: number,
): Promise<RelayStarted> {
  const where = { host: step.host, step: 'start relay' };
  if (step.runtime === 'auto' || step.runtime === 'python3') {
    const first = await launch(chain, step, forwardPort, 'python3');
    if (first.ready) return ready(first, step, 'python3');
  }
  const probe = await chain.exec(step.host, probeRuntimesCommand(), { timeoutMs: PROBE_TIMEOUT_MS });
  const choice = chooseRuntime(step.runtime, parseProbe(probe.stdout));
  if ('error' in choice) throw new EnvError(choice.error, choice.hint, where);
  return ready(await launch(chain, step, forwardPort, choice.runtime), step, choice.runtime);
}

interface Launched {
  result: ExecResult;
  /** The relay's ready or error line, undefined when it printed neither. */
  ready: ReturnType<typeof parseRelayOutput>;
  /** What this runtime does worse than python3 (socat, nc). */
  warning: string | undefined;
}

async function launch(
  chain: RemoteChain,
  step: RelayStep,
  forwardPort: number,
  runtime: RelayRuntimeName,
): Promise<Launched> {
  const cmd = relayCommand(
    {
      runtime,
      listen: step.listen,
      to: { address: step.forwardTo.address, port: forwardPort },
      idleTimeout: step.idleTimeout,
    },
    runtime === 'python3' ? await readRelayScript() : undefined,
  );
  const result = await chain.execUntil(step.host, cmd.command, {
    ...(cmd.stdin !== undefined ? { stdin: cmd.stdin } : {}),
    until: (out) => parseRelayOutput(out) !== undefined,
    timeoutMs: START_TIMEOUT_MS,
  });
  return { result, ready: parseRelayOutput(result.stdout), warning: cmd.warning };
}

function ready(l: Launched, step: RelayStep, runtime: RelayRuntimeName): RelayStarted {
  const where = { host: step.host, step: 'start relay' };
  const parsed = l.ready;
  if (!parsed) {
    const last = l.result.stderr.trim().split('\n').pop() || `exit code ${l.result.code ?? 'none'}`;
    throw new EnvError(
      `the ${runtime} relay did not start: ${last}`,
      `run the relay by hand on ${step.host} to see why`,
      where,
    );
  }
  if ('error' in parsed) {
    const noPort = /no free UDP port/.test(parsed.error);
    throw new EnvError(
      `the relay did not start: ${parsed.error}`,
      noPort
        ? `widen relay.ports of ${step.host} in moshproxy.yaml, or stop old sessions (moshctl down --all)`
        : `check relay settings of ${step.host}`,
      where,
    );
  }
  return { pid: parsed.pid, port: parsed.port, runtime, ...(l.warning ? { warning: l.warning } : {}) };
}

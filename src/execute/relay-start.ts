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
import type { ExecUntilResult, SshChain } from '../ssh/connect.js';
import type { RelayStarted } from './runner.js';

const PROBE_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 15_000;

export async function startRelayOn(
  chain: SshChain,
  step: RelayStep,
  forwardPort: number,
): Promise<RelayStarted> {
  const where = { host: step.host, step: 'start relay' };
  if (step.runtime === 'auto' || step.runtime === 'python3') {
    const first = await launch(chain, step, forwardPort, 'python3');
    if (parseRelayOutput(first.stdout)) return ready(first, step, 'python3', undefined);
  }
  const probe = await chain.exec(step.host, probeRuntimesCommand(), { timeoutMs: PROBE_TIMEOUT_MS });
  const choice = chooseRuntime(step.runtime, parseProbe(probe.stdout));
  if ('error' in choice) throw new EnvError(choice.error, choice.hint, where);
  const r = await launch(chain, step, forwardPort, choice.runtime);
  return ready(r, step, choice.runtime, choice.warning);
}

async function launch(
  chain: SshChain,
  step: RelayStep,
  forwardPort: number,
  runtime: RelayRuntimeName,
): Promise<ExecUntilResult> {
  const cmd = relayCommand(
    {
      runtime,
      listen: step.listen,
      to: { address: step.forwardTo.address, port: forwardPort },
      idleTimeout: step.idleTimeout,
    },
    runtime === 'python3' ? await readRelayScript() : undefined,
  );
  const r = await chain.execUntil(step.host, cmd.command, {
    ...(cmd.stdin !== undefined ? { stdin: cmd.stdin } : {}),
    until: (out) => parseRelayOutput(out) !== undefined,
    timeoutMs: START_TIMEOUT_MS,
  });
  return cmd.warning ? Object.assign(r, { warning: cmd.warning }) : r;
}

function ready(
  r: ExecUntilResult & { warning?: string },
  step: RelayStep,
  runtime: RelayRuntimeName,
  choiceWarning: string | undefined,
): RelayStarted {
  const where = { host: step.host, step: 'start relay' };
  const parsed = parseRelayOutput(r.stdout);
  if (!parsed) {
    const last = r.stderr.trim().split('\n').pop() || `exit code ${r.code ?? 'none'}`;
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
  const warning = choiceWarning ?? r.warning;
  return { pid: parsed.pid, port: parsed.port, runtime, ...(warning ? { warning } : {}) };
}

// Starting one relay on a hop: probe which runtime the hop has, pick one as
// configured, start it and read its ready line. The relay prints that line
// only once it is bound, so mosh-client's first packet never hits a closed port.
import { EnvError } from '../errors.js';
import type { RelayStep } from '../plan/types.js';
import {
  chooseRuntime,
  parseProbe,
  parseRelayOutput,
  probeRuntimesCommand,
  relayCommand,
} from '../relay/commands.js';
import { readRelayScript } from '../relay/script.js';
import type { SshChain } from '../ssh/connect.js';
import type { RelayStarted } from './runner.js';

const PROBE_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 15_000;

export async function startRelayOn(
  chain: SshChain,
  step: RelayStep,
  forwardPort: number,
): Promise<RelayStarted> {
  const where = { host: step.host, step: 'start relay' };
  const probe = await chain.exec(step.host, probeRuntimesCommand(), { timeoutMs: PROBE_TIMEOUT_MS });
  const choice = chooseRuntime(step.runtime, parseProbe(probe.stdout));
  if ('error' in choice) throw new EnvError(choice.error, choice.hint, where);
  const script = choice.runtime === 'python3' ? await readRelayScript() : undefined;
  const cmd = relayCommand(
    {
      runtime: choice.runtime,
      listen: step.listen,
      to: { address: step.forwardTo.address, port: forwardPort },
      idleTimeout: step.idleTimeout,
    },
    script,
  );
  const r = await chain.execUntil(step.host, cmd.command, {
    ...(cmd.stdin !== undefined ? { stdin: cmd.stdin } : {}),
    until: (out) => parseRelayOutput(out) !== undefined,
    timeoutMs: START_TIMEOUT_MS,
  });
  const ready = parseRelayOutput(r.stdout);
  if (!ready) {
    const last = r.stderr.trim().split('\n').pop() || `exit code ${r.code ?? 'none'}`;
    throw new EnvError(
      `the ${choice.runtime} relay did not start: ${last}`,
      `run the relay by hand on ${step.host} to see why`,
      where,
    );
  }
  if ('error' in ready) {
    const noPort = /no free UDP port/.test(ready.error);
    throw new EnvError(
      `the relay did not start: ${ready.error}`,
      noPort
        ? `widen relay.ports of ${step.host} in moshproxy.yaml, or stop old sessions (moshctl down --all)`
        : `check relay settings of ${step.host}`,
      where,
    );
  }
  const warning = choice.warning ?? cmd.warning;
  return { pid: ready.pid, port: ready.port, runtime: choice.runtime, ...(warning ? { warning } : {}) };
}

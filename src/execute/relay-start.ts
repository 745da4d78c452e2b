// Starting one relay on a hop. One exec tries python3, then perl (both
// programs travel on stdin, so a missing interpreter costs no round trip);
// only when neither runs is the hop probed for socat. The python3 and perl
// relays keep their ssh channel as a control channel: they report their port
// at once, are told where to forward (TO), and are stopped with QUIT.
import { EnvError } from '../errors.js';
import type { RelayStep } from '../plan/types.js';
import {
  chooseRuntime,
  parseProbe,
  parseRelayOutput,
  probeRuntimesCommand,
  relayCommand,
} from '../relay/commands.js';
import { parseListen, parseOk, parseProbeKeyOk, probeKeyLine, toLine } from '../relay/control.js';
import { relayLaunch } from '../relay/launch.js';
import { readRelayPrograms } from '../relay/script.js';
import { parseSessionReport, withSessionReport, type SessionReport } from '../remote/sshd-session.js';
import { awaitLine } from '../transport/line-channel.js';
import type { LineChannel, RemoteChain } from '../transport/types.js';
import type { OnStarted, RelayStarted } from './runner.js';
import { hostPort } from '../host-port.js';

const PROBE_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 15_000;
const ANSWER_TIMEOUT_MS = 10_000;

export interface RelayOnHop extends RelayStarted {
  /** The control channel of a python3 or perl relay; socat and nc have none. */
  channel?: LineChannel;
  /** It took the session's probe key (transport auto): it answers probes. */
  probing?: boolean;
}

/** Launch, then wire: for a relay whose next hop's port is already known (and for healing). */
export async function startRelayOn(
  chain: RemoteChain,
  step: RelayStep,
  forwardPort: number,
  onStarted?: OnStarted,
  probeKey?: Buffer,
): Promise<RelayOnHop> {
  if (step.runtime === 'socat' || step.runtime === 'nc')
    return startFallback(chain, step, forwardPort, step.runtime, onStarted);
  const launched = await launchRelay(chain, step, onStarted);
  if (launched === 'fallback') return startFallback(chain, step, forwardPort, undefined, onStarted);
  const probing = await wireRelay(launched.channel, step, forwardPort, probeKey);
  return { ...launched, ...(probing ? { probing } : {}) };
}

/**
 * Starts a python3 or perl relay without a next hop: it binds and reports its
 * port at once (`onStarted` is told then). 'fallback' when neither runs and
 * `auto` may use socat, which can only start once the next hop's port is known.
 * The same exec first says the connection's session process (`onSession`,
 * see SshdSessions.tell), so the hop needs no exec of its own for that.
 */
export async function launchRelay(
  chain: RemoteChain,
  step: RelayStep,
  onStarted?: OnStarted,
  onSession?: (report: SessionReport) => void,
): Promise<(RelayOnHop & { channel: LineChannel }) | 'fallback'> {
  const where = { host: step.host, step: 'start relay' };
  if (step.runtime === 'socat' || step.runtime === 'nc') return 'fallback';
  const launch = relayLaunch(
    { runtime: step.runtime, listen: step.listen, idleTimeout: step.idleTimeout },
    await readRelayPrograms(),
  );
  const channel = await chain.openChannel(step.host, withSessionReport(launch.command), {
    stdin: launch.stdin,
  });
  // A login script may print first (an rc file that echoes): read past it to the relay's own line.
  let session: SessionReport | undefined;
  const listen = await awaitLine(
    channel,
    (l) => {
      if (session === undefined && (session = parseSessionReport(l))) onSession?.(session);
      return parseListen(l);
    },
    START_TIMEOUT_MS,
  );
  if (!listen) {
    channel.end();
    if (channel.isClosed && !channel.stderr().trim())
      throw new EnvError(
        `the relay command on ${step.host} ended without a word (it ran nothing, or the connection dropped)`,
        `a bastion that runs no commands for you (ForceCommand, a nologin shell) can still carry the session with --transport tcp (nothing runs on the bastions); otherwise check the network path to ${step.host}`,
        where,
      );
    const last = channel.stderr().trim().split('\n').pop() || 'no answer';
    throw new EnvError(
      `the relay did not start: ${last}`,
      `run the relay by hand on ${step.host} to see why`,
      where,
    );
  }
  if ('error' in listen) {
    const noRuntime = /no relay runtime/.test(listen.error);
    if (noRuntime && step.runtime === 'auto') return 'fallback';
    throw new EnvError(
      `the relay did not start: ${listen.error}`,
      /no free UDP port/.test(listen.error)
        ? `widen relay.ports of ${step.host} in moshproxy.yaml, or stop old sessions (moshctl down --all)`
        : noRuntime
          ? `install python3 or perl on ${step.host} (Debian/Ubuntu: apt install python3; perl-base is on every Debian host)`
          : `check relay settings of ${step.host}`,
      where,
    );
  }
  const relay = {
    pid: listen.pid,
    port: listen.port,
    runtime: listen.runtime,
    ...(listen.started ? { started: listen.started } : {}),
  };
  onStarted?.({ kind: 'relay', relay });
  return { ...relay, channel };
}

/**
 * Tells a launched relay where to forward (TO over its control channel) and
 * waits for its OK. With `probeKey` (transport auto, the relay before the
 * target) it is given the key first, in the same round trip; resolves with
 * whether it took it (a refusal only means the session cannot come back from tcp).
 */
export async function wireRelay(
  channel: LineChannel,
  step: RelayStep,
  forwardPort: number,
  probeKey?: Buffer,
): Promise<boolean> {
  if (probeKey) channel.send(probeKeyLine(probeKey));
  channel.send(toLine(step.forwardTo.address, forwardPort));
  const keyed = probeKey ? await awaitLine(channel, parseProbeKeyOk, ANSWER_TIMEOUT_MS) : undefined;
  const ok = await awaitLine(channel, parseOk, ANSWER_TIMEOUT_MS);
  if (!ok || 'error' in ok) {
    channel.send('QUIT');
    throw new EnvError(
      `the relay on ${step.host} cannot forward to ${hostPort(step.forwardTo.address, forwardPort)}: ${ok && 'error' in ok ? ok.error : 'no answer'}`,
      `check that ${step.host} resolves and reaches ${step.forwardTo.address}`,
      { host: step.host, step: 'wire relay' },
    );
  }
  return keyed === true;
}

/** socat (or nc, on request): a weaker relay, started the old way; it has no control channel. */
export async function startFallback(
  chain: RemoteChain,
  step: RelayStep,
  forwardPort: number,
  requested: 'socat' | 'nc' | undefined,
  onStarted?: OnStarted,
): Promise<RelayOnHop> {
  const where = { host: step.host, step: 'start relay' };
  const probe = await chain.exec(step.host, probeRuntimesCommand(), { timeoutMs: PROBE_TIMEOUT_MS });
  const choice = chooseRuntime(requested ?? 'socat', parseProbe(probe.stdout));
  if ('error' in choice) {
    if (requested) throw new EnvError(choice.error, choice.hint, where);
    throw new EnvError(
      `no relay runtime on ${step.host}: neither python3 (>= 3.6) nor perl runs there, and socat is not installed`,
      `install python3 or perl (apt install python3; perl-base is on every Debian host), or socat as a weaker fallback`,
      where,
    );
  }
  const runtime = choice.runtime;
  if (step.forwardTo.address.includes(':'))
    throw new EnvError(
      `${step.forwardTo.host} has an IPv6 address, and the only relay that runs on ${step.host} is ${runtime}, which speaks IPv4 only`,
      `install python3 or perl on ${step.host} (their relays speak IPv6), or give ${step.forwardTo.host} an IPv4 address`,
      where,
    );
  const cmd = relayCommand({
    runtime,
    listen: step.listen,
    to: { address: step.forwardTo.address, port: forwardPort },
    idleTimeout: step.idleTimeout,
  });
  const result = await chain.execUntil(step.host, cmd.command, {
    until: (out) => parseRelayOutput(out) !== undefined,
    timeoutMs: START_TIMEOUT_MS,
  });
  const parsed = parseRelayOutput(result.stdout);
  if (!parsed || 'error' in parsed) {
    const why = parsed
      ? parsed.error
      : result.stderr.trim().split('\n').pop() || `exit code ${result.code ?? 'none'}`;
    throw new EnvError(
      `the ${runtime} relay did not start: ${why}`,
      /no free UDP port/.test(why)
        ? `widen relay.ports of ${step.host} in moshproxy.yaml, or stop old sessions (moshctl down --all)`
        : `run the relay by hand on ${step.host} to see why`,
      where,
    );
  }
  const relay = {
    pid: parsed.pid,
    port: parsed.port,
    runtime,
    ...(cmd.warning ? { warning: cmd.warning } : {}),
  };
  onStarted?.({ kind: 'relay', relay });
  return relay;
}

// The half of `moshctl doctor` that talks to hosts, all of it through the
// runner `up` uses: connect (steps 1-4 come from its errors), ask the target
// about mosh-server and the locale, start a UDP echo there and the relays as
// `up` would, and send datagrams through them; when that fails, through the
// tcp forwarder instead. Whatever it started is stopped before it returns,
// also when a step throws or the user interrupts.
import type { HostConfig, ResolvedConfig } from '../config/types.js';
import { EnvError } from '../errors.js';
import { planUp, type Observed } from '../plan/plan.js';
import type { ClientStep, ForwardStep, RelayStep } from '../plan/types.js';
import { awaitLine } from '../transport/line-channel.js';
import type { LineChannel } from '../transport/types.js';
import { assemble, connectFailureOf, connectResults } from './checks.js';
import { forwardResults } from './forwards.js';
import { echoLaunch, parseEchoLine, parseTargetCheck, targetCheckCommand } from './remote.js';
import { launch, wire } from './relays.js';
import { IDLE_SECONDS, Started } from './started.js';
import type { CheckResult, DoctorReport, DoctorRunner } from './types.js';
import { PROBE_DEFAULTS, udpRoundTrip, type ProbeOptions } from './udp-probe.js';
import type { ClientFacts } from './local.js';
import {
  clientResult,
  failed,
  relayOk,
  targetResults,
  tcpResult,
  udpResult,
  versionsResult,
} from './verdicts.js';

export type { DoctorRunner } from './types.js';

export interface DoctorOptions {
  /** Progress, one line at a time (stderr). */
  log: (line: string) => void;
  /** Aborted on Ctrl-C: the run stops at the next step, after stopping what it started. */
  signal?: AbortSignal;
  probe?: ProbeOptions;
  /** What the planner needs of this machine (whether a brokered first hop resolves here). */
  observed?: Observed;
  /** mosh-client here and its version (local.ts); without it, that check is not made. */
  localClient?: (program: string) => Promise<ClientFacts>;
}

const ECHO_START_MS = 15_000;

/** Checks every hop of `name`'s route in order; the caller closes the runner. */
export async function diagnose(
  config: ResolvedConfig,
  name: string,
  runner: DoctorRunner,
  opts: DoctorOptions,
): Promise<DoctorReport> {
  const plan = planUp(config, name, opts.observed);
  const hosts = plan.route.map((h) => config.hosts[h]).filter((h): h is HostConfig => h !== undefined);
  const target = hosts[hosts.length - 1];
  if (!target || hosts.length !== plan.route.length)
    throw new Error(`bug: the route of ${name} is incomplete`);
  const transport = plan.transport.kind;
  const ran: CheckResult[] = [];
  const asks = { forwards: target.forwards.length > 0, agent: target.forward_agent };
  const report = (): DoctorReport => assemble(name, plan.route, transport, ran, asks);
  const checkpoint = (): void => {
    if (opts.signal?.aborted) throw opts.signal.reason;
  };

  // Asked while the hops connect: it needs none of them.
  const client = plan.steps.find((s): s is ClientStep => s.kind === 'client' || s.kind === 'hand-over');
  const clientFacts = opts.localClient?.(client?.program.path ?? target.mosh.client);
  opts.log(`${name}: connecting: local → ${plan.route.join(' → ')}`);
  const readyMs: Record<string, number> = {};
  const t0 = performance.now();
  let reached: string | undefined;
  try {
    reached = (await runner.connect((h) => (readyMs[h] = Math.round(performance.now() - t0)))).reachedAddress;
  } catch (e) {
    const failure = connectFailureOf(e, plan.route);
    if (!failure) throw e;
    if (clientFacts) ran.push(clientResult(await clientFacts));
    ran.push(...connectResults(hosts, failure, readyMs));
    return report();
  }
  const local = clientFacts ? await clientFacts : undefined;
  if (local) ran.push(clientResult(local));
  ran.push(...connectResults(hosts, undefined, readyMs));
  checkpoint();

  opts.log(`${name}: asking ${target.name} for mosh-server and the locale`);
  try {
    const r = await runner.ask(target.name, targetCheckCommand(target.mosh.locale, target.mosh.server));
    const facts = parseTargetCheck(r.stdout);
    ran.push(...targetResults(target, facts, r));
    if (local) ran.push(versionsResult(target.name, facts.server, local));
  } catch (e) {
    if (!(e instanceof EnvError)) throw e;
    ran.push(failed(target.name, 'mosh-server', e));
  }
  checkpoint();
  if (asks.forwards || asks.agent) {
    opts.log(`${name}: asking ${target.name} whether it lets the forwards and the agent through`);
    ran.push(...(await forwardResults(runner, target)));
    checkpoint();
  }

  const started = new Started(runner, opts.log);
  try {
    await roundTrips({ config, name, hosts, transport, reached, runner, opts, ran, started, checkpoint });
  } finally {
    await started.stopAll();
  }
  return report();
}

interface TripContext {
  config: ResolvedConfig;
  name: string;
  hosts: HostConfig[];
  transport: DoctorReport['transport'];
  /** Undefined for a first hop behind a ProxyCommand whose name does not resolve here (tcp only). */
  reached: string | undefined;
  runner: DoctorRunner;
  opts: DoctorOptions;
  ran: CheckResult[];
  started: Started;
  checkpoint: () => void;
}

/** Steps 5, 7 and 8: the relays, the UDP round trip and, when it fails, the tcp one. */
async function roundTrips(c: TripContext): Promise<void> {
  const { hosts, runner, ran, started } = c;
  const target = hosts[hosts.length - 1] as HostConfig;
  const bastions = hosts.slice(0, -1);
  const probe = c.opts.probe ?? PROBE_DEFAULTS;
  const tcpOnly = c.transport === 'tcp';
  const relaySteps = tcpOnly
    ? []
    : planUp(c.config, c.name, c.opts.observed, { transport: 'udp' })
        .steps.filter((s): s is RelayStep => s.kind === 'relay')
        .map((s) => ({ ...s, idleTimeout: IDLE_SECONDS }));
  if (tcpOnly)
    for (const b of bastions)
      ran.push({
        host: b.name,
        check: 'relay-runtime',
        status: 'skip',
        detail: 'transport tcp: nothing runs on the bastions',
      });

  c.opts.log(
    `${c.name}: starting a UDP echo on ${target.name}${relaySteps.length > 0 ? ` and a relay on ${bastions.map((b) => b.name).join(', ')}` : ''}`,
  );
  // Every start settles before anything is rethrown: what one started while another failed is stopped too.
  const echoing = startEcho(runner, target, started);
  const launching = relaySteps.map((s) => launch(runner, s, started));
  await Promise.allSettled([echoing, ...launching]);
  const echo = await echoing;
  const relays = await Promise.all(launching);
  c.checkpoint();
  const wireError = echo.port !== undefined ? await wire(runner, relays, echo.port, started) : undefined;
  c.checkpoint();
  relays.forEach((r) => {
    if (r.relay) ran.push(relayOk(r.step.host, r.relay));
    else if (r.error) ran.push(failed(r.step.host, 'relay-runtime', r.error));
    else
      ran.push({
        host: r.step.host,
        check: 'relay-runtime',
        status: 'skip',
        detail: 'python3 and perl do not run there; socat was not tried, since the relays could not be wired',
      });
  });

  const firstHost = hosts[0]?.name ?? target.name;
  let udpFailed = relays.some((r) => r.error !== undefined);
  if (tcpOnly)
    ran.push({
      host: firstHost,
      check: 'udp-round-trip',
      status: 'skip',
      detail: "transport tcp: mosh's datagrams travel inside the ssh chain",
    });
  else if (echo.port === undefined) {
    if (echo.error) ran.push(failed(firstHost, 'udp-round-trip', echo.error));
    else
      ran.push({ host: firstHost, check: 'udp-round-trip', status: 'skip', detail: echo.why ?? 'no echo' });
  } else if (wireError) {
    udpFailed = true;
    ran.push(failed(firstHost, 'udp-round-trip', wireError));
  } else if (relays.some((r) => !r.relay)) {
    ran.push({
      host: firstHost,
      check: 'udp-round-trip',
      status: 'skip',
      detail: 'not checked: it needs a relay on every bastion',
    });
  } else if (c.reached === undefined) {
    ran.push({
      host: firstHost,
      check: 'udp-round-trip',
      status: 'skip',
      detail: `not checked: ${firstHost} is reached through a ProxyCommand and has no address here`,
    });
  } else {
    c.opts.log(`${c.name}: udp round trip`);
    const first = relays[0]?.relay;
    const sentTo = { address: c.reached, port: first ? first.port : echo.port };
    const r = udpResult(
      hosts,
      sentTo,
      await udpRoundTrip(sentTo.address, sentTo.port, withSignal(probe, c)),
      probe.waitMs,
    );
    udpFailed = r.status === 'fail';
    ran.push(r);
  }
  c.checkpoint();

  if (tcpOnly && echo.why !== undefined) {
    // The tcp transport's forwarder needs what the echo needs: python3 or perl on the target.
    ran.push({
      host: target.name,
      check: 'tcp-round-trip',
      status: 'fail',
      detail: `neither python3 nor perl runs on ${target.name}, and the tcp transport's forwarder needs one`,
      hint: `install python3 or perl on ${target.name} (perl-base is on every Debian host), or use --transport udp`,
    });
    return;
  }
  if (echo.port === undefined || !(tcpOnly || udpFailed)) {
    ran.push({
      host: target.name,
      check: 'tcp-round-trip',
      status: 'skip',
      detail:
        echo.port === undefined ? `not checked: no echo runs on ${target.name}` : 'not needed: UDP works',
    });
    return;
  }
  c.opts.log(`${c.name}: tcp round trip`);
  const step = planUp(c.config, c.name, {}, { transport: 'tcp' }).steps.find(
    (s): s is ForwardStep => s.kind === 'forward',
  );
  if (!step) throw new Error('bug: a tcp plan without a forward step');
  try {
    // The echo listens on every address (as mosh-server without -s or -i): the loopback reaches it.
    const f = await runner.startForward(
      { ...step, idleTimeout: IDLE_SECONDS },
      { address: '127.0.0.1', port: echo.port },
    );
    const r = await udpRoundTrip('127.0.0.1', f.port, withSignal(probe, c));
    ran.push(tcpResult(target.name, f.runtime, r, probe.waitMs));
  } catch (e) {
    if (!(e instanceof EnvError)) throw e;
    ran.push(failed(target.name, 'tcp-round-trip', e));
  }
}

function withSignal(probe: ProbeOptions, c: TripContext): ProbeOptions {
  return c.opts.signal ? { ...probe, signal: c.opts.signal } : probe;
}

interface Echo {
  port?: number;
  /** Why it could not start, when that is the host's fault (a failure of the udp check). */
  error?: EnvError;
  /** Why it could not start, when that only means nothing can be checked (no python3 or perl there). */
  why?: string;
}

/** The UDP echo on the target, in place of mosh-server (see echo-programs.ts). */
async function startEcho(runner: DoctorRunner, target: HostConfig, started: Started): Promise<Echo> {
  const where = { host: target.name, step: 'start echo' };
  const launch = echoLaunch(target.mosh.server_ports);
  let channel: LineChannel;
  try {
    channel = await runner.openChannel(target.name, launch.command, launch.stdin);
  } catch (e) {
    if (e instanceof EnvError) return { error: e };
    throw e;
  }
  started.channel(channel);
  const line = await awaitLine(channel, parseEchoLine, ECHO_START_MS);
  if (line && 'port' in line) return { port: line.port };
  if (line?.noRuntime)
    return { why: `not checked: neither python3 nor perl runs on ${target.name} to echo with` };
  const why = line?.error ?? (channel.stderr().trim().split('\n').pop() || 'no answer');
  return {
    error: new EnvError(
      `the UDP echo on ${target.name} did not start: ${why}`,
      /no free UDP port/.test(why)
        ? `widen mosh.server_ports of ${target.name} in moshproxy.yaml, or stop old sessions (moshctl down --all)`
        : `a target that runs no commands for you cannot run mosh-server either; check that ${target.name} runs commands over ssh`,
      where,
    ),
  };
}

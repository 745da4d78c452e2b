// The planner: a pure function of the config, what was observed and the
// options. No I/O here, so whole plans are tested as text without any host.
import { UserError } from '../errors.js';
import { suggest } from '../config/suggest.js';
import { filesLabel } from '../config/discover.js';
import type {
  BindServer,
  HostConfig,
  MoshTransport,
  PredictMode,
  RelayRuntime,
  ResolvedConfig,
} from '../config/types.js';
import { forwardingOf, forwardSteps, forwardStops, type CliForward } from './forwards.js';
import type { ClientProgram, Plan, ServerBind, SetupStep, TeardownStep } from './types.js';
import { routeClient, routeClientWhy } from './route-client.js';
import { keptSession } from './session.js';
import { PLAN_VERSION } from './types.js';

/** transport auto: how long UDP may go unanswered before the stream takes over (see ForwardStep.udpFirst). */
export const AUTO_SWITCH_MS = 2_000;
// mosh sends at least every 3 s each way while both ends live, so 8 s of silence is not an idle session.
export const AUTO_SILENCE_MS = 8_000;

export interface Observed {
  /** Relay runtime found on a hop by probing it; absent before `up` probes. */
  runtimes?: Readonly<Record<string, RelayRuntime>>;
  /**
   * Whether the first hop's address resolves on this machine, looked up only
   * when that hop is reached through a ProxyCommand (an access broker): mosh's
   * UDP cannot follow a ProxyCommand, so without an address only tcp can.
   */
  firstHopResolves?: boolean | undefined;
}

export interface PlanOptions {
  /** `up NAME -- COMMAND...`: runs instead of the login shell. */
  command?: string[];
  /** `up --no-connect`: print what a mosh client elsewhere needs instead of running one here. */
  noConnect?: boolean;
  /** `up --transport`: overrides the target's mosh.transport. */
  transport?: MoshTransport;
  /** `up --bind-server`: overrides the target's mosh.bind_server. */
  bindServer?: BindServer;
  /** `up --server`, `--client`, `--predict`: override the target's mosh.server, mosh.client, mosh.predict. */
  server?: string;
  client?: string;
  predict?: PredictMode;
  /** `up --predict-overwrite`, `--no-init`: set mosh.predict_overwrite, mosh.no_init. */
  predictOverwrite?: boolean;
  noInit?: boolean;
  /** `up -L`, `-R`, `-D`: added to the target's configured forwards. */
  forwards?: CliForward[];
  /** `up -A`: forward the agent to the target, whatever the config says. */
  forwardAgent?: boolean;
}

export function planUp(
  config: ResolvedConfig,
  name: string,
  observed: Observed = {},
  options: PlanOptions = {},
): Plan {
  const target = config.hosts[name];
  if (!target) {
    const known = Object.keys(config.hosts);
    const guess = suggest(name, known);
    throw UserError.one(
      `unknown host "${name}" (config: ${filesLabel(config.files)})`,
      guess ? `did you mean "${guess}"?` : `known hosts: ${known.join(', ')}`,
    );
  }
  const route = [...target.chain, name];
  const hosts = route.map((h) => {
    const host = config.hosts[h];
    if (!host) throw new Error(`bug: chain of ${name} names unknown host ${h}`);
    return host;
  });
  const transport = chooseTransport(name, hosts, observed, options);
  const forwarding = forwardingOf(target, options);
  const tcp = transport.kind === 'tcp';
  const auto = transport.kind === 'auto';
  const steps: SetupStep[] = [];
  const next = (): number => steps.length + 1;

  const connectIds = hosts.map((h, i) => {
    const id = next();
    const prev = hosts[i - 1];
    steps.push({
      id,
      kind: 'connect',
      host: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      ...(prev ? { through: prev.name } : {}),
      dependsOn: prev ? [id - 1] : [],
      cause:
        h.name === name
          ? 'mosh-server runs here'
          : `hop ${i + 1} of ${hosts.length - 1} towards ${name}; it relays UDP and tunnels ssh`,
    });
    return id;
  });

  const serverId = next();
  const session = keptSession(target.mosh.session, name);
  const bind = serverBind(hosts, transport.kind, options);
  const program = clientProgram(target, options);
  steps.push({
    id: serverId,
    kind: 'server',
    host: name,
    ports: target.mosh.server_ports,
    networkTimeout: target.mosh.network_timeout,
    signalTimeout: target.mosh.signal_timeout,
    locale: target.mosh.locale,
    ...(options.command && options.command.length > 0 ? { command: options.command } : {}),
    ...(session ? { session } : {}),
    bind,
    program: options.server ?? target.mosh.server,
    ...(forwarding.agent ? { agentSocket: forwarding.agent.socket } : {}),
    dependsOn: [connectIds[connectIds.length - 1] ?? 0],
    cause: 'the session lives here; it prints its UDP port and key',
  });

  // Every relay starts as soon as its hop is connected, alongside mosh-server;
  // a wire step then tells it the next hop's port, once that is known. With
  // tcp there are none: mosh's datagrams travel inside the ssh chain.
  const relayCount = tcp ? 0 : hosts.length - 1;
  const relayId = (i: number): number => serverId + 1 + i;
  const portStep = (i: number): number => (i + 1 === relayCount ? serverId : relayId(i + 1));
  const relayIds: number[] = [];
  const waitFor: number[] = [];
  hosts.slice(0, relayCount).forEach((hop, i) => {
    const nextHost = hosts[i + 1] ?? target;
    const runtime = observed.runtimes?.[hop.name] ?? hop.relay.runtime;
    const targetAtStart = runtime === 'socat' || runtime === 'nc';
    const id = next();
    steps.push({
      id,
      kind: 'relay',
      host: hop.name,
      listen: hop.relay.ports,
      runtime,
      idleTimeout: target.mosh.network_timeout,
      forwardTo: { host: nextHost.name, address: nextHost.address, port: { step: portStep(i) } },
      targetAtStart,
      dependsOn: targetAtStart ? [connectIds[i] ?? 0, portStep(i)] : [connectIds[i] ?? 0],
      cause: `${nextHost.name}'s UDP port is reachable only from ${hop.name}`,
    });
    relayIds.push(id);
    if (targetAtStart) waitFor.push(id);
  });
  steps.forEach((s) => {
    if (s.kind !== 'relay' || s.targetAtStart) return;
    const id = next();
    steps.push({
      id,
      kind: 'wire',
      host: s.host,
      of: s.id,
      forwardTo: s.forwardTo,
      dependsOn: [s.id, s.forwardTo.port.step],
      cause: `the relay on ${s.host} learns where to forward once ${s.forwardTo.host}'s port is known`,
    });
    waitFor.push(id);
  });
  const first = relayIds[0];
  const upstream =
    first === undefined ? { id: serverId, host: target } : { id: first, host: hosts[0] ?? target };

  // Port forwards and the agent ride the kept chain to the target: set up once
  // it is connected, alongside everything else; the shell does not wait for them.
  const pushForwards = (): void => {
    for (const s of forwardSteps(forwarding, target, connectIds[connectIds.length - 1] ?? 0, next()))
      steps.push(s);
  };

  if (tcp || auto) {
    const forwardId = next();
    const udpTo = {
      host: upstream.host.name,
      address: { reachedBy: connectIds[0] ?? 0 },
      port: { step: upstream.id },
    };
    steps.push({
      id: forwardId,
      kind: 'forward',
      host: name,
      to: {
        address:
          bind.mode === 'ssh' ? { boundBy: serverId } : bind.mode === 'any' ? '127.0.0.1' : bind.address,
        port: { step: serverId },
      },
      idleTimeout: target.mosh.network_timeout,
      ...(auto ? { udpFirst: { to: udpTo, switchAfterMs: AUTO_SWITCH_MS, silenceMs: AUTO_SILENCE_MS } } : {}),
      dependsOn: auto ? [serverId, ...waitFor] : [serverId],
      cause: auto
        ? `transport auto (${transport.why}): UDP through ${relayIds.length > 0 ? 'the relays' : `to ${name}`} while replies come; tcp inside the ssh chain when none come, or when a relay cannot start`
        : `tcp transport: mosh's datagrams reach mosh-server inside the ssh chain (${transport.why})`,
    });
    // A relay that cannot start (a bastion that runs nothing) only means tcp from the start.
    if (auto) for (const s of steps) if (s.kind === 'relay' || s.kind === 'wire') s.fallback = forwardId;
    pushForwards();
    steps.push({
      id: next(),
      kind: 'client',
      host: 'local',
      connectTo: { host: 'local', address: { local: '127.0.0.1' }, port: { step: forwardId } },
      program,
      dependsOn: [forwardId],
      cause: "moshctl's end of the tunnel listens on this machine's loopback; it lives as long as moshctl up",
    });
  } else {
    pushForwards();
    steps.push({
      id: next(),
      kind: options.noConnect ? 'hand-over' : 'client',
      host: 'local',
      connectTo: {
        host: upstream.host.name,
        address: { reachedBy: connectIds[0] ?? 0 },
        port: { step: upstream.id },
      },
      program,
      dependsOn: waitFor.length > 0 ? waitFor : [serverId],
      cause:
        (hosts.length > 1
          ? `the first hop, ${upstream.host.name}, is the only one this machine reaches`
          : `${name} is reached directly`) +
        (options.noConnect ? '; --no-connect: a mosh client elsewhere takes it from here' : ''),
    });
  }

  const teardown: TeardownStep[] = [];
  const tnext = (): number => steps.length + teardown.length + 1;
  // Every process is stopped at once (a relay by QUIT over its channel); the
  // connections close when all of that is done.
  for (const id of relayIds) {
    const s = steps[id - 1];
    if (s)
      teardown.push({
        id: tnext(),
        kind: 'stop-relay',
        host: s.host,
        of: id,
        dependsOn: [],
        cause: 'started by this session',
      });
  }
  const forward = steps.find((s) => s.kind === 'forward');
  if (forward)
    teardown.push({
      id: tnext(),
      kind: 'stop-forward',
      host: name,
      of: forward.id,
      dependsOn: [],
      cause: 'started by this session; it exits as soon as its stream ends',
    });
  teardown.push({
    id: tnext(),
    kind: 'stop-server',
    host: name,
    of: serverId,
    dependsOn: [],
    cause: session
      ? `started by this session; the ${session.program} session ${session.name} stays, for the next up`
      : 'started by this session',
  });
  for (const s of forwardStops(steps, tnext())) teardown.push(s);
  const stops = teardown.map((t) => t.id);
  for (let i = hosts.length - 1; i >= 0; i--) {
    const h = hosts[i];
    if (h)
      teardown.push({
        id: tnext(),
        kind: 'disconnect',
        host: h.name,
        dependsOn: stops,
        cause: 'opened by this session',
      });
  }
  return {
    version: PLAN_VERSION,
    target: name,
    route,
    sshClient: routeClient(hosts),
    sshClientWhy: routeClientWhy(hosts),
    transport,
    steps,
    teardown,
    notes: forwarding.notes,
  };
}

/** mosh-client and the variables mosh's wrapper would set for it: what the options or the target's mosh settings ask for. */
function clientProgram(target: HostConfig, options: PlanOptions): ClientProgram {
  const predict = options.predict ?? target.mosh.predict;
  const env: Record<string, string> = {};
  if (predict !== undefined) env.MOSH_PREDICTION_DISPLAY = predict;
  if (options.predictOverwrite === true || target.mosh.predict_overwrite)
    env.MOSH_PREDICTION_OVERWRITE = 'yes';
  if (options.noInit === true || target.mosh.no_init) env.MOSH_NO_TERM_INIT = '1';
  return { path: options.client ?? target.mosh.client, env };
}

/**
 * Where mosh-server listens: where the datagrams come to it. mosh.bind_server
 * `ssh` (mosh's own default) is `-s`, the address the ssh connection came in
 * on: the hop before connected to the target's address, and its relay sends
 * to that same address (both resolve it there, the first address that
 * answers); without a bastion, mosh-client sends to the address this
 * machine's connection reached. Two routes differ: with tcp, datagrams come
 * from the forwarder on the target's loopback; a target reached through a
 * ProxyCommand sees ssh come in from the broker, not from where mosh-client sends.
 */
function serverBind(
  hosts: readonly HostConfig[],
  transport: MoshTransport,
  options: PlanOptions,
): ServerBind {
  const target = hosts[hosts.length - 1];
  if (!target) throw new Error('bug: a route without hosts');
  const from = options.bindServer !== undefined ? '--bind-server' : 'mosh.bind_server';
  const setting = options.bindServer ?? target.mosh.bind_server;
  if (setting === 'any')
    return { mode: 'any', why: `every IPv4 address, mosh-server's own default (${from}: any)` };
  if (setting !== 'ssh') return { mode: 'address', address: setting, why: `${from}: ${setting}` };
  if (transport === 'tcp')
    return {
      mode: 'address',
      address: '127.0.0.1',
      why: `the target's loopback, where the forwarder sends from (transport tcp, ${from}: ssh)`,
    };
  const before = hosts[hosts.length - 2];
  if (!before && target.proxy_command !== undefined)
    return {
      mode: 'any',
      why: `every IPv4 address: ssh comes in to ${target.name} through a ProxyCommand, not where mosh-client sends (${from}: ssh)`,
    };
  const sender = before
    ? `where the relay on ${before.name} sends, ${target.address} as ${before.name} resolves it`
    : 'where mosh-client sends';
  const tcpToo = transport === 'auto' ? ', and the forwarder if tcp takes over' : '';
  return { mode: 'ssh', why: `the address the ssh connection came in on, ${sender}${tcpToo}` };
}

/**
 * The transport and why: `--transport`, else mosh.transport where a file sets
 * it, else moshctl's choice. A first hop reached through a ProxyCommand has
 * no UDP path of its own: tcp when its address does not resolve here, auto
 * (UDP first) when it does.
 */
function chooseTransport(
  name: string,
  hosts: readonly HostConfig[],
  observed: Observed,
  options: PlanOptions,
): Plan['transport'] {
  const target = hosts[hosts.length - 1];
  const first = hosts[0];
  if (!target || !first) throw new Error(`bug: route of ${name} without hosts`);
  const broker = first.proxy_command !== undefined;
  const noUdp = broker && observed.firstHopResolves !== true;
  const setting = target.sources.transport;
  const asked: Plan['transport'] = options.transport
    ? { kind: options.transport, why: '--transport' }
    : setting
      ? { kind: target.mosh.transport, why: `mosh.transport: ${target.mosh.transport}, set at ${setting}` }
      : !broker
        ? { kind: 'udp', why: 'the default, mosh.transport: udp' }
        : noUdp
          ? {
              kind: 'tcp',
              why: `chosen by itself: ${first.name} is reached through a ProxyCommand and its address ${first.address} does not resolve here, so mosh's UDP has no way to it`,
            }
          : {
              kind: 'auto',
              why: `chosen by itself: ${first.name} is reached through a ProxyCommand, but its address ${first.address} resolves here, so UDP is tried first`,
            };
  if (noUdp && asked.kind === 'udp') {
    throw UserError.one(
      `${asked.why} cannot carry the session to "${name}": ${first.name} is reached through a ProxyCommand (${first.proxy_command}), and mosh's UDP cannot follow a ProxyCommand; ${first.address} does not resolve on this machine, so there is no address to send it to`,
      `use --transport tcp (mosh's datagrams inside the ssh chain), or --transport auto; or leave the transport unset and moshctl chooses tcp by itself`,
    );
  }
  // auto sends UDP to the first hop's address first: without one, only the tcp part can run.
  if (noUdp && asked.kind === 'auto')
    return {
      kind: 'tcp',
      why: `${asked.why}, but ${first.name} is reached through a ProxyCommand and ${first.address} does not resolve here: tcp`,
    };
  // A handed-over session has no moshctl in its path to switch, so auto is udp there.
  if (asked.kind === 'auto' && options.noConnect)
    return { kind: 'udp', why: `${asked.why}, and --no-connect hands over a udp session` };
  if (asked.kind === 'tcp' && options.noConnect) {
    throw UserError.one(
      `--no-connect cannot hand over a tcp session of "${name}": mosh's datagrams travel inside this moshctl process, which --no-connect ends`,
      noUdp
        ? `${first.name} is reached through a ProxyCommand, so only tcp can carry this session: run moshctl up without --no-connect`
        : 'use --transport udp with --no-connect, or run moshctl up without --no-connect',
    );
  }
  return asked;
}

// Which port forwards and whether the agent go with a session: the target's
// configured ones (moshproxy.yaml, else ssh_config) and those of the command
// line, checked against each other. Pure, as the rest of the planner.
import { createHash } from 'node:crypto';
import { UserError } from '../errors.js';
import { hostPort } from '../host-port.js';
import type { HostConfig } from '../config/types.js';
import { dropRepeats } from '../config/forwards.js';
import { FLAGS, listenersClash, listensOnLoopback, parseForward } from '../forward/spec.js';
import type { ForwardKind, ForwardSpec } from '../forward/types.js';
import { hostSlug } from './session.js';
import type { AgentStep, PortForwardStep, SetupStep, StopStep } from './types.js';

/** `up -L/-R/-D`: the text after the flag, as typed (the CLI checked it; it is read here with the target's GatewayPorts). */
export interface CliForward {
  kind: ForwardKind;
  arg: string;
}

export interface ForwardOptions {
  forwards?: CliForward[];
  /** `up -A`. */
  forwardAgent?: boolean;
  noConnect?: boolean;
}

export interface Forwarding {
  forwards: ForwardSpec[];
  /** With agent forwarding: the stable link on the target, and why (AgentStep.source). */
  agent?: { socket: string; source: string };
  notes: string[];
}

/** Where the agent link lives on the target: named after the host alone, so the next `up` (and a kept tmux or screen session) finds the same path. */
export function agentSocket(target: string): string {
  // A name the link scripts accept (checkAgentSocket): no leading '-', at most 64
  // characters; a long one keeps its start and a digest of the whole, so two stay apart.
  let name = hostSlug(target).replace(/^-/, '_');
  if (name.length > 64)
    name = `${name.slice(0, 55)}_${createHash('sha256').update(target).digest('hex').slice(0, 8)}`;
  return `~/.moshctl/agent/${name}.sock`;
}

export function forwardingOf(target: HostConfig, options: ForwardOptions): Forwarding {
  const fromCli = (options.forwards ?? []).map((f) => {
    const r = parseForward(f.kind, f.arg, 'command line', { gatewayPorts: target.gateway_ports });
    if (!r.ok) throw UserError.one(`${FLAGS[f.kind]} ${r.message}`, r.hint);
    return r.spec;
  });
  const notes = [...target.forward_notes];
  if (options.noConnect) {
    const asked = [...fromCli.map((f) => f.text), ...(options.forwardAgent ? ['-A'] : [])];
    if (asked.length > 0)
      throw UserError.one(
        `--no-connect cannot take ${asked.join(', ')}: forwards and the agent live in the moshctl up process, and with --no-connect none stays to carry them`,
        `run moshctl up ${target.name} without --no-connect to have them, or leave them out`,
      );
    const configured = [
      ...target.forwards.map((f) => `${f.text} (${f.source})`),
      ...(target.forward_agent ? [`agent forwarding (${agentWhy(target)})`] : []),
    ];
    if (configured.length > 0)
      notes.push(
        `--no-connect leaves out ${configured.join(', ')}: forwards and the agent live in the moshctl up process, and none stays to carry them`,
      );
    return { forwards: [], notes };
  }
  const forwards = dropRepeats([...target.forwards, ...fromCli]);
  forwards.forEach((f, i) => {
    const other = forwards.slice(0, i).find((g) => listenersClash(g, f));
    if (other)
      throw UserError.one(
        `${other.text} (${other.source}) and ${f.text} (${f.source}) listen on the same ${'path' in f.listen ? 'socket path' : 'port'}${f.kind === 'remote' ? ` of ${target.name}` : ''}`,
        'give one of them another port or path, or leave one out',
      );
  });
  for (const f of forwards) {
    if (f.kind === 'remote' || listensOnLoopback(f)) continue;
    const l = f.listen as { host: string; port: number };
    const where =
      l.host === '*'
        ? 'every interface'
        : l.host === '0.0.0.0'
          ? 'every IPv4 interface'
          : l.host === '::'
            ? 'every IPv6 interface'
            : `the address ${l.host}`;
    const reach =
      f.to === undefined
        ? `anything ${target.name} reaches (a SOCKS proxy)`
        : 'path' in f.to
          ? `the socket ${f.to.path} on ${target.name}`
          : `${hostPort(f.to.host, f.to.port)} through ${target.name}`;
    const gateway = target.gateway_ports
      ? "; ssh_config's GatewayPorts yes binds a forward without a bind address so"
      : '';
    notes.push(
      `${f.text} (${f.source}) listens on ${where} of this machine: whoever reaches this machine there reaches ${reach}${gateway}; give it the bind address 127.0.0.1 unless that is meant`,
    );
  }
  const agentSource = options.forwardAgent ? '-A' : target.forward_agent ? agentWhy(target) : undefined;
  return {
    forwards,
    ...(agentSource ? { agent: { socket: agentSocket(target.name), source: agentSource } } : {}),
    notes,
  };
}

function agentWhy(target: HostConfig): string {
  const s = target.sources.forward_agent;
  return s === 'ssh_config' || s === undefined ? "ssh_config's ForwardAgent" : `forward_agent at ${s}`;
}

/** One port-forward step per forward, then the agent's, numbered from `firstId`, each after the target's connect step. */
export function forwardSteps(
  forwarding: Forwarding,
  target: HostConfig,
  targetConnect: number,
  firstId: number,
): (PortForwardStep | AgentStep)[] {
  let id = firstId;
  const out: (PortForwardStep | AgentStep)[] = forwarding.forwards.map((spec) => ({
    id: id++,
    kind: 'port-forward',
    host: target.name,
    spec,
    required: target.exit_on_forward_failure,
    dependsOn: [targetConnect],
    cause: `${spec.text} (${spec.source})`,
  }));
  if (forwarding.agent)
    out.push({
      id: id++,
      kind: 'agent',
      host: target.name,
      socket: forwarding.agent.socket,
      source: forwarding.agent.source,
      dependsOn: [targetConnect],
      cause: `${forwarding.agent.source}; the session's SSH_AUTH_SOCK, kept pointing at the agent of each new connection`,
    });
  return out;
}

/** Their teardown, numbered from `firstId`: each closed at once, with the other stops. */
export function forwardStops(steps: readonly SetupStep[], firstId: number): StopStep[] {
  let id = firstId;
  return steps.flatMap((s): StopStep[] =>
    s.kind === 'port-forward'
      ? [
          {
            id: id++,
            kind: 'stop-port-forward',
            host: s.host,
            of: s.id,
            dependsOn: [],
            cause: 'opened by this session',
          },
        ]
      : s.kind === 'agent'
        ? [
            {
              id: id++,
              kind: 'unlink-agent',
              host: s.host,
              of: s.id,
              dependsOn: [],
              cause: 'the agent behind it goes with the session',
            },
          ]
        : [],
  );
}

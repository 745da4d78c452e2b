// The plan as a person reads it: one line per step with its host and what it
// starts, and a "why" line under it. Tests compare this text whole.
import { formatPortRange } from '../config/types.js';
import type { AddressOf, BoundBy, ClientProgram, Plan, PortForwardStep, Step } from './types.js';
import { hostPort } from '../host-port.js';

const RUNTIME: Record<string, string> = {
  auto: 'python3, else perl, else socat',
  python3: 'python3',
  perl: 'perl',
  socat: 'socat, a fallback',
  nc: 'nc, roaming will not survive it',
};

// Wide enough for the longest kind shown, "port-forward", so columns line up in every plan.
const KIND_WIDTH = 12;

/** Kinds shown shorter than `plan --json` names them, to keep the column narrow. */
const SHOWN: Partial<Record<Step['kind'], string>> = { 'stop-port-forward': 'unforward' };

export function formatPlan(plan: Plan): string {
  const lines = [
    `moshctl up ${plan.target}: local → ${plan.route.join(' → ')}`,
    `ssh client: ${plan.sshClient} (${plan.sshClientWhy})`,
    `transport: ${plan.transport.kind} (${plan.transport.why})`,
    ...plan.notes.map((n) => `note: ${n}`),
  ];
  const width = Math.max(5, ...plan.route.map((h) => h.length));
  const row = (s: Step): void => {
    const head = `${String(s.id).padStart(3)}. ${(SHOWN[s.kind] ?? s.kind).padEnd(KIND_WIDTH)} ${s.host.padEnd(width)}  `;
    lines.push(head + describe(s));
    const after = s.dependsOn.length > 0 ? `after ${s.dependsOn.join(', ')}; ` : 'at once; ';
    lines.push(`${' '.repeat(head.length)}${after}why: ${s.cause}`);
  };
  plan.steps.forEach(row);
  const handOver = plan.steps.some((s) => s.kind === 'hand-over');
  lines.push(
    handOver
      ? `teardown, on \`moshctl down ${plan.target}\` (else server and relays time out on their own):`
      : `teardown, when mosh-client exits (also \`moshctl down ${plan.target}\`):`,
  );
  plan.teardown.forEach(row);
  return lines.join('\n') + '\n';
}

function describe(s: Step): string {
  switch (s.kind) {
    case 'connect':
      return `ssh ${s.user}@${hostPort(s.address, s.port)}${s.through ? `, tunnelled through ${s.through}` : ', direct'}`;
    case 'server': {
      const run = s.command ? JSON.stringify(s.command.join(' ')) : 'the login shell';
      const what = !s.session
        ? `runs ${run}`
        : s.command
          ? `runs ${run} in a new ${s.session.program} session ${s.session.name}, or attaches to that session if it exists (the command then does not run)`
          : `runs the login shell in ${s.session.program} session ${s.session.name}, or attaches to that session if it exists`;
      const ports = `${s.ports.from}:${s.ports.to}`;
      const flag = s.bind.mode === 'ssh' ? '-s ' : s.bind.mode === 'address' ? `-i ${s.bind.address} ` : '';
      const bind = `${flag ? flag.trim() : 'no -s or -i'}: ${s.bind.why}`;
      return `${s.program} new ${flag}-p ${ports} -l LANG=${s.locale} (${bind}), network timeout ${s.networkTimeout} s, signal timeout ${s.signalTimeout} s, ${what}`;
    }
    case 'relay':
      return (
        (s.targetAtStart
          ? `UDP relay (${RUNTIME[s.runtime] ?? s.runtime}) on a free port in ${formatPortRange(s.listen)} → ${hostPort(s.forwardTo.address, `<port of step ${s.forwardTo.port.step}>`)}, exits after ${s.idleTimeout} s idle`
          : `UDP relay (${RUNTIME[s.runtime] ?? s.runtime}) on a free port in ${formatPortRange(s.listen)}, exits after ${s.idleTimeout} s idle`) +
        fallback(s.fallback)
      );
    case 'wire':
      return `tell the relay of step ${s.of} to forward to ${hostPort(s.forwardTo.address, `<port of step ${s.forwardTo.port.step}>`)}${fallback(s.fallback)}`;
    case 'forward':
      if (s.udpFirst) {
        const u = s.udpFirst;
        return `a UDP port on this machine's loopback for mosh-client, sending on by UDP to ${hostPort(address(u.to.address), `<port of step ${u.to.port.step}>`)}; when no reply comes within ${u.switchAfterMs / 1000} s (or for ${u.silenceMs / 1000} s later), or step ${u.to.port.step} failed: a datagram forwarder (python3, else perl) on the target → ${hostPort(serverAddress(s.to.address), `<port of step ${s.to.port.step}>`)}, fed through the ssh chain, for the rest of the session`;
      }
      return `datagram forwarder (python3, else perl) on the target → ${hostPort(serverAddress(s.to.address), `<port of step ${s.to.port.step}>`)}, fed through the ssh chain from a UDP port on this machine's loopback; exits when its stream ends or after ${s.idleTimeout} s idle`;
    case 'client':
      return `${s.program.path} → ${hostPort(address(s.connectTo.address), `<port of step ${s.connectTo.port.step}>`)}, key in its environment only${clientEnv(s.program)}`;
    case 'hand-over':
      return `print host, port and key for a mosh client elsewhere (to ${hostPort(address(s.connectTo.address), `<port of step ${s.connectTo.port.step}>`)})${clientEnv(s.program)}, then leave the session running`;
    case 'stop-relay':
      return `stop the relay of step ${s.of} (QUIT over its channel, else by its pid)`;
    case 'stop-forward':
      return `end the stream of step ${s.of} (the forwarder exits on its own)`;
    case 'stop-server':
      return `stop mosh-server of step ${s.of} by its pid`;
    case 'port-forward':
      return portForward(s);
    case 'agent':
      return `forward this machine's ssh-agent to ${s.host} only, over an ssh channel of its own, and link ${s.socket} to it there (the shell's SSH_AUTH_SOCK)`;
    case 'stop-port-forward':
      return `close the forward of step ${s.of}: its listener and the connections it carries`;
    case 'unlink-agent':
      return `remove the link of step ${s.of} and close the agent's channel`;
    case 'disconnect':
      return 'close the ssh connection';
  }
}

/** What a port forward listens on and where its connections go, each on its side. */
function portForward(s: PortForwardStep): string {
  const { spec } = s;
  const l = spec.listen;
  const port = 'path' in l ? '' : l.port === 0 ? `a port ${s.host} chooses` : `port ${l.port}`;
  const at =
    'path' in l
      ? `the socket ${l.path}`
      : l.host === undefined
        ? `loopback, ${port}`
        : l.host === '*'
          ? `every interface, ${port}`
          : `${l.host}, ${port}`;
  const to = spec.to;
  const end = to === undefined ? '' : 'path' in to ? `the socket ${to.path}` : hostPort(to.host, to.port);
  const what =
    spec.kind === 'local'
      ? `listens on this machine (${at}); each connection goes on from ${s.host} to ${end}`
      : spec.kind === 'remote'
        ? `${s.host}'s sshd listens (${at}); each connection comes back to this machine, to ${end}`
        : `a SOCKS4/5 proxy on this machine (${at}); each connection goes on from ${s.host} to where the client asks`;
  const fails = s.required ? 'up fails (ExitOnForwardFailure)' : 'a warning, and the session goes on';
  return `${what}; kept across reconnects; if it cannot be set up: ${fails}`;
}

/** mosh --predict and friends, as the variables mosh-client reads. */
function clientEnv(program: ClientProgram): string {
  const vars = Object.entries(program.env).map(([k, v]) => `${k}=${v}`);
  return vars.length > 0 ? `, with ${vars.join(' ')}` : '';
}

function fallback(step: number | undefined): string {
  return step === undefined ? '' : `; if it fails, step ${step} goes by tcp`;
}

/** Where mosh-server listens: an address, or which step's answer says (hostPort brackets an IPv6 one). */
function serverAddress(a: string | BoundBy): string {
  return typeof a === 'string' ? a : `<address step ${a.boundBy} bound>`;
}

function address(a: AddressOf): string {
  return 'local' in a ? a.local : `<address step ${a.reachedBy} reached>`;
}

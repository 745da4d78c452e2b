// A host's port forwards, agent forwarding and ExitOnForwardFailure, layer by
// layer as its other settings: moshproxy.yaml (the host's `forward:`, then
// `defaults:`), else ssh_config as `ssh -G` prints it, else none. The
// forward lists of one layer replace another's whole, never mix: a team file
// that names a host's forwards means those.
import { parseForward } from '../forward/spec.js';
import type { ForwardKind, ForwardSpec } from '../forward/types.js';
import { pointer } from './source.js';
import type { SshGValues } from './ssh-config.js';
import type { HostConfig } from './types.js';

export const forwardKinds = ['local', 'remote', 'dynamic'] as const satisfies readonly ForwardKind[];

/** `forward:` as the schema lets it through. */
export interface RawForward {
  local?: (string | number)[];
  remote?: (string | number)[];
  dynamic?: (string | number)[];
  exit_on_failure?: boolean;
}

/** Where a host or `defaults:` may say something of forwarding. */
export interface RawForwarding {
  forward?: RawForward;
  forward_agent?: boolean;
}

/** What moshproxy.yaml says of one host's forwarding; unset parts come from ssh_config or defaults. */
export interface DeclaredForwards {
  /** The forward lists of the host's `forward:`, else of `defaults.forward`, when either names one. */
  lists?: { items: { kind: ForwardKind; arg: string; source: string }[]; source: string };
  agent?: { value: boolean; source: string };
  exitOnFailure?: { value: boolean; source: string };
}

/** Which layer says what: the host's own (at `hostPtr`), else `defaults:`. `where` turns a pointer into file:line. */
export function declareForwards(
  own: RawForwarding | undefined,
  hostPtr: string | undefined,
  defaults: RawForwarding,
  where: (ptr: string) => string,
): DeclaredForwards {
  const layers = [
    ...(own && hostPtr ? [{ raw: own, ptr: hostPtr }] : []),
    { raw: defaults, ptr: '/defaults' },
  ];
  const out: DeclaredForwards = {};
  const listed = layers.find((l) => forwardKinds.some((k) => l.raw.forward?.[k] !== undefined));
  if (listed) {
    const at = pointer(listed.ptr, 'forward');
    out.lists = {
      source: where(at),
      items: forwardKinds.flatMap((kind) =>
        (listed.raw.forward?.[kind] ?? []).map((v, i) => ({
          kind,
          arg: String(v),
          source: where(pointer(pointer(at, kind), i)),
        })),
      ),
    };
  }
  const exit = layers.find((l) => l.raw.forward?.exit_on_failure !== undefined);
  if (exit)
    out.exitOnFailure = {
      value: exit.raw.forward?.exit_on_failure === true,
      source: where(`${pointer(exit.ptr, 'forward')}/exit_on_failure`),
    };
  const agent = layers.find((l) => l.raw.forward_agent !== undefined);
  if (agent)
    out.agent = {
      value: agent.raw.forward_agent === true,
      source: where(pointer(agent.ptr, 'forward_agent')),
    };
  return out;
}

type Resolved = Pick<
  HostConfig,
  'forwards' | 'forward_agent' | 'exit_on_forward_failure' | 'gateway_ports' | 'forward_notes'
> & {
  sources: Pick<
    HostConfig['sources'],
    'forwards' | 'forward_agent' | 'exit_on_forward_failure' | 'gateway_ports'
  >;
};

/** One host's forwarding: moshproxy.yaml's, else what `ssh -G` printed (undefined when not consulted), else none. */
export function resolveForwards(decl: DeclaredForwards, g: SshGValues | undefined): Resolved {
  const gatewayPorts = g?.gatewayports === true;
  const ctx = { gatewayPorts };
  const notes: string[] = [];
  let forwards: ForwardSpec[];
  let forwardsSource: string;
  if (decl.lists) {
    forwards = decl.lists.items.map((item) => {
      const r = parseForward(item.kind, item.arg, item.source, ctx);
      if (!r.ok) throw new Error(`bug: forward ${item.arg} at ${item.source} not checked before resolve`);
      return r.spec;
    });
    forwardsSource = decl.lists.source;
  } else if (g?.clearallforwardings) {
    forwards = [];
    forwardsSource = 'ssh_config (ClearAllForwardings yes)';
  } else {
    const fromG = g ? sshGForwards(g, gatewayPorts) : { forwards: [], notes: [] };
    forwards = fromG.forwards;
    notes.push(...fromG.notes);
    forwardsSource = forwards.length > 0 || notes.length > 0 ? 'ssh_config' : 'default';
  }
  const agentG = g?.forwardagent !== undefined && g.forwardagent !== 'no';
  const exitG = g?.exitonforwardfailure === true;
  return {
    forwards: dropRepeats(forwards),
    forward_agent: decl.agent ? decl.agent.value : agentG,
    exit_on_forward_failure: decl.exitOnFailure ? decl.exitOnFailure.value : exitG,
    gateway_ports: gatewayPorts,
    forward_notes: notes,
    sources: {
      forwards: forwardsSource,
      forward_agent: decl.agent?.source ?? (agentG ? 'ssh_config' : 'default'),
      exit_on_forward_failure: decl.exitOnFailure?.source ?? (exitG ? 'ssh_config' : 'default'),
      gateway_ports: gatewayPorts ? 'ssh_config' : 'default',
    },
  };
}

/** The first of forwards with the same text (ssh_config may list one in two Host blocks). */
export function dropRepeats(forwards: ForwardSpec[]): ForwardSpec[] {
  const seen = new Set<string>();
  return forwards.filter((f) => !seen.has(f.text) && seen.add(f.text));
}

/** `[host]:port` as ssh -G prints a TCP endpoint; a listener may also be a bare port. */
const TCP_END = /^\[[^\]]*\]:\d+$/;
const TCP_LISTEN = /^(?:\d+|\[[^\]]*\]:\d+)$/;

const KEYWORD: Record<ForwardKind, string> = {
  local: 'LocalForward',
  remote: 'RemoteForward',
  dynamic: 'DynamicForward',
};

/**
 * ssh_config's forwards from `ssh -G`. OpenSSH 9.2's -G prints a LocalForward
 * to a socket path a second time as a DynamicForward of its listener (it
 * lists every local forward without a target host there): those lines are
 * dropped. A remote forward to `[socks]:0` is ssh's reverse SOCKS proxy.
 * What moshctl cannot take is left out with a note, not refused: ssh itself
 * took it, and the session does not depend on it.
 */
export function sshGForwards(
  g: Pick<SshGValues, 'localforward' | 'remoteforward' | 'dynamicforward'>,
  gatewayPorts: boolean,
): { forwards: ForwardSpec[]; notes: string[] } {
  const forwards: ForwardSpec[] = [];
  const notes: string[] = [];
  const leftOut = (kind: ForwardKind, line: string, why: string): void => {
    notes.push(`ssh_config's ${KEYWORD[kind]} ${line} is left out: ${why}`);
  };
  const take = (kind: ForwardKind, line: string, arg: string | undefined): void => {
    if (arg === undefined) return leftOut(kind, line, 'moshctl cannot tell its two parts apart');
    const r = parseForward(kind, arg, 'ssh_config', { gatewayPorts });
    if (r.ok) forwards.push(r.spec);
    else leftOut(kind, line, `it ${r.message.replace(/^"[^"]*" /, '')}`);
  };
  const spurious = g.localforward.flatMap((line) => {
    const [listen, to] = splitLine(line) ?? [];
    return listen !== undefined && to !== undefined && !TCP_END.test(to) ? [listen] : [];
  });
  for (const line of g.dynamicforward) {
    const i = spurious.indexOf(line);
    if (i >= 0) spurious.splice(i, 1);
    else take('dynamic', line, asField(line));
  }
  for (const line of g.localforward) take('local', line, joined(line));
  for (const line of g.remoteforward) {
    const parts = splitLine(line);
    if (parts?.[1] === '[socks]:0')
      leftOut(
        'remote',
        parts[0],
        "ssh's reverse SOCKS proxy (RemoteForward with a port alone) is not done by moshctl",
      );
    else take('remote', line, joined(line));
  }
  return { forwards, notes };
}

/** A `-G` line's listener and target. Paths are printed as they are, spaces and colons included. */
function splitLine(line: string): [string, string] | undefined {
  const m =
    /^(\d+|\[[^\]]*\]:\d+)\s+(.+)$/.exec(line) ??
    /^(.+?)\s+(\[[^\]]*\]:\d+)$/.exec(line) ??
    /^(\S+)\s+(\S+)$/.exec(line);
  return m ? [m[1] ?? '', m[2] ?? ''] : undefined;
}

/** The line as ssh's own `LISTEN:TARGET`, the form -L takes. */
function joined(line: string): string | undefined {
  const parts = splitLine(line);
  return parts ? `${asField(parts[0])}:${asField(parts[1])}` : undefined;
}

/** A printed endpoint as a field of ssh's form: a path with a colon goes in brackets. */
function asField(s: string): string {
  return TCP_LISTEN.test(s) || !s.includes(':') ? s : `[${s}]`;
}

// A plan is data: what `up` will do, in order, each step with the host it acts
// on, why it exists, and which steps it waits for. The executor follows it and
// makes no decisions of its own.
import type { MoshTransport, PortRange, RelayRuntime, SshClientKind } from '../config/types.js';
import type { ForwardSpec } from '../forward/types.js';

// 2: `sshClient`, and the client step's address refers to the connect step that reached it.
// 3: relays start as soon as their hop is connected; `wire` steps tell them where to forward.
// 4: the server step's `session` (mosh.session: tmux or screen keeps the shell for the next `up`).
// 5: `transport`; with tcp a `forward` step instead of relays, and the client's address may be local.
// 6: transport auto: relay and wire steps may have a `fallback`, a forward step `udpFirst`.
// 7: `sshClientWhy`; the transport may be chosen by moshctl (a first hop behind a ProxyCommand).
// 8: the server step's `bind` (mosh.bind_server) and `program` (mosh.server); a forward step may send to
//    the address mosh-server bound; client and hand-over steps have a `program` (mosh.client, its variables).
// 9: `port-forward` and `agent` steps (-L, -R, -D, -A) with their stops; the server step's `agentSocket`;
//    `notes`, which plan and up print.
export const PLAN_VERSION = 9;

/** A port not known until a step ran (mosh-server's or a relay's chosen port). */
export interface PortOf {
  step: number;
}

/**
 * Where mosh-client sends: the numeric address a connect step's connection
 * reached (mosh-client takes no names), or, with the tcp transport, this
 * machine's loopback, where moshctl's end of the tunnel listens.
 */
export type AddressOf = { reachedBy: number } | { local: '127.0.0.1' };

interface StepBase {
  /** 1-based, in execution order; teardown steps continue the numbering. */
  id: number;
  host: string;
  cause: string;
  dependsOn: number[];
}

export interface ConnectStep extends StepBase {
  kind: 'connect';
  address: string;
  port: number;
  user: string;
  /** The hop whose connection tunnels this one; absent for a direct connection. */
  through?: string;
}

export interface ServerStep extends StepBase {
  kind: 'server';
  ports: PortRange;
  networkTimeout: number;
  signalTimeout: number;
  locale: string;
  /** Runs instead of the login shell when set. */
  command?: string[];
  /** mosh.session: the shell (or command) runs in this tmux or screen session; absent for none. */
  session?: KeptSession;
  /** Where mosh-server listens (mosh.bind_server), and why there. */
  bind: ServerBind;
  /** mosh-server's path or name on the target (mosh.server); `~/` is the remote user's home. */
  program: string;
  /**
   * With agent forwarding: SSH_AUTH_SOCK for the session's shell, the agent
   * step's stable path (`~/` is the remote home), which that step keeps
   * pointing at the live forwarded socket.
   */
  agentSocket?: string;
}

/**
 * mosh-server's bind option, as mosh's --bind-server. `ssh`: `-s`, the local
 * address of the ssh connection ($SSH_CONNECTION), which is the address the
 * hop before connected to (and its relay sends to), or the one this machine
 * reached (where mosh-client sends); mosh-server reports it (MOSHCTL-SERVER
 * BOUND) so a forwarder can send there too. `any`: no option, every IPv4
 * address. `address`: `-i ADDRESS`.
 */
export type ServerBind = ({ mode: 'ssh' } | { mode: 'any' } | { mode: 'address'; address: string }) & {
  why: string;
};

/** The address the mosh-server of a server step bound with `-s`, known once it started; 127.0.0.1 if it said none. */
export interface BoundBy {
  boundBy: number;
}

/**
 * A tmux or screen session that outlives mosh-server, so that the next `up`
 * of the host attaches to the same shell (mosh itself cannot reattach a new
 * client to a running server). An existing session is attached, not created:
 * a `command` then does not run.
 */
export interface KeptSession {
  program: 'tmux' | 'screen';
  /** Derived from the host's name only, so every `up` of that host finds it (see keptSession). */
  name: string;
}

export interface RelayStep extends StepBase {
  kind: 'relay';
  listen: PortRange;
  runtime: RelayRuntime;
  /** Exits after this many seconds without traffic from the server side. */
  idleTimeout: number;
  forwardTo: { host: string; address: string; port: PortOf };
  /**
   * socat and nc must know their next hop when they start, so they wait for its
   * port; python3 and perl start at once and are told later by a wire step.
   */
  targetAtStart: boolean;
  /** transport auto: when this fails, the session goes by this forward step's tcp instead of failing. */
  fallback?: number;
}

/**
 * tcp transport: a forwarder on the target (python3 or perl, over stdin)
 * turns the stream moshctl feeds it through the ssh chain back into datagrams
 * to mosh-server on the target's loopback; moshctl's end is a UDP port on this
 * machine's loopback, which mosh-client is given.
 */
export interface ForwardStep extends StepBase {
  kind: 'forward';
  /** mosh-server as the target reaches it: where it listens (ServerStep.bind), 127.0.0.1 when that is everywhere. */
  to: { address: string | BoundBy; port: PortOf };
  /** Exits after this many seconds without a datagram either way (and at once when its stream ends). */
  idleTimeout: number;
  /**
   * transport auto: moshctl's port sends on by UDP to `to` (the first relay,
   * or mosh-server with no bastion) and starts the forwarder only when no UDP
   * reply comes: within `switchAfterMs` of the first datagram, or for
   * `silenceMs` once replies came. Absent: tcp from the start.
   */
  udpFirst?: {
    to: { host: string; address: AddressOf; port: PortOf };
    switchAfterMs: number;
    silenceMs: number;
  };
}

/** Tells a started relay where to forward, once the next hop's port is known (its control channel's TO). */
export interface WireStep extends StepBase {
  kind: 'wire';
  /** The relay step this wires. */
  of: number;
  forwardTo: { host: string; address: string; port: PortOf };
  /** transport auto: as RelayStep's. */
  fallback?: number;
}

export interface ClientStep extends StepBase {
  /** client: mosh-client here, in the foreground; hand-over: print what a mosh client elsewhere needs (`--no-connect`). */
  kind: 'client' | 'hand-over';
  connectTo: { host: string; address: AddressOf; port: PortOf };
  program: ClientProgram;
}

/**
 * mosh-client as mosh's own wrapper runs it (scripts/mosh.pl): the program
 * (mosh.client) and the variables mosh-client reads for --predict,
 * --predict-overwrite and --no-init (src/frontend/mosh-client.cc,
 * terminaldisplayinit.cc). The key is not among them: it is known only
 * once mosh-server started.
 */
export interface ClientProgram {
  path: string;
  /** Only what was asked for: MOSH_PREDICTION_DISPLAY, MOSH_PREDICTION_OVERWRITE=yes, MOSH_NO_TERM_INIT=1. */
  env: Record<string, string>;
}

/**
 * A port forward (ForwardSpec) kept for the whole session over the kept chain:
 * local and dynamic listen on this machine from set-up to teardown, and their
 * connections wait for the chain while it is down; remote is asked of the
 * target's sshd again on each new chain. `host` is the target: where the
 * connections of local and dynamic come out, where remote listens.
 */
export interface PortForwardStep extends StepBase {
  kind: 'port-forward';
  spec: ForwardSpec;
  /**
   * The target's ExitOnForwardFailure (forward.exit_on_failure): when the
   * forward cannot be set up, `up` fails; otherwise it warns and goes on, as ssh does.
   */
  required: boolean;
}

/**
 * Agent forwarding to the target only (never a bastion): a channel with the
 * agent on each chain, and `socket`, a stable path in a 0700 directory of the
 * user on the target, kept pointing at its forwarded socket. The server step's
 * agentSocket names the same path.
 */
export interface AgentStep extends StepBase {
  kind: 'agent';
  /** `~/`-relative on the target. */
  socket: string;
  /** Why (`-A`, forward_agent at file:line, ssh_config's ForwardAgent). */
  source: string;
}

export interface StopStep extends StepBase {
  kind: 'stop-relay' | 'stop-server' | 'stop-forward' | 'stop-port-forward' | 'unlink-agent';
  /** The step whose process this stops (by the pid it reported). */
  of: number;
}

export interface DisconnectStep extends StepBase {
  kind: 'disconnect';
}

export type SetupStep =
  ConnectStep | ServerStep | RelayStep | WireStep | ForwardStep | PortForwardStep | AgentStep | ClientStep;
export type TeardownStep = StopStep | DisconnectStep;
export type Step = SetupStep | TeardownStep;

export interface Plan {
  version: typeof PLAN_VERSION;
  target: string;
  /** Hops, client side first, then the target. */
  route: string[];
  /** Which ssh client carries every connection of the route. */
  sshClient: SshClientKind;
  /** Why that client: a setting and where, moshctl's choice (what needs it), or the default. */
  sshClientWhy: string;
  /** How mosh's datagrams travel (mosh.transport, or `up --transport`), and why. */
  transport: { kind: MoshTransport; why: string };
  steps: SetupStep[];
  teardown: TeardownStep[];
  /**
   * What the user should know before it runs: forwards left out (ssh_config's
   * that moshctl cannot carry, configured ones under --no-connect), forwards
   * reachable from the network. `plan` prints them, `up` on stderr.
   */
  notes: string[];
}

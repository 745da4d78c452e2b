// The seam between the plan and the world. The executor calls only this; the
// ssh runner drives real hosts, a recording fake drives unit tests.
import type { RelayRuntime } from '../config/types.js';
import type { ForwardStatus } from '../forward/types.js';
import type {
  AgentStep,
  ClientProgram,
  ForwardStep,
  PortForwardStep,
  RelayStep,
  ServerStep,
} from '../plan/types.js';
import type { Liveness, StopOutcome } from '../remote/processes.js';
import type { ChainState } from './chain-supervisor.js';
import type { PathChange } from './tcp-tunnel.js';

export type { PathChange } from './tcp-tunnel.js';

export interface ServerStarted {
  pid: number;
  port: number;
  /** Its start on the target, when it could be read (see RecordedProcess). */
  started?: string;
  /** Held in memory only, handed to mosh-client's environment. */
  key: string;
  /** With `-s` (ServerStep.bind ssh): the address it bound, as it reported it. */
  bound?: string;
  /** It could not listen where it was told (-s or -i), and mosh-server then listens on every IPv4 address. */
  warning?: string;
}

export interface RelayStarted {
  pid: number;
  port: number;
  /** Its start on the hop, when the relay could read it (see RecordedProcess). */
  started?: string;
  runtime: RelayRuntime;
  /** Set when the runtime is weaker than python3 (socat fallback, nc). */
  warning?: string;
}

export interface ForwardStarted {
  /** The port on this machine's loopback mosh-client is given. */
  port: number;
  /** How datagrams travel now: udp (auto, while replies come) or tcp through a forwarder in `runtime`. */
  mode: 'udp' | 'tcp';
  runtime?: string;
  /**
   * transport auto: why a session on tcp cannot come back to udp (no relay
   * before the target that answers probes). Absent when it can, and for tcp.
   */
  noReturn?: string;
}

/** `keeper`: the shell mosh-server is started in, before mosh-server's own pid is known. */
export type ProcessKind = 'mosh-server' | 'relay' | 'keeper';

/** A process on a host, the moment its pid is known (see OnStarted). */
export type StartedProcess =
  | { kind: 'keeper'; pid: number; started?: string }
  | { kind: 'mosh-server'; pid: number; port: number; started?: string }
  | { kind: 'relay'; relay: RelayStarted };

/**
 * Told of each process a step starts as soon as its pid is known, before the
 * step goes on with it; what it records must be on disk when it returns
 * (mosh-server's keeper stops mosh-server unless told it was recorded). So a
 * process exists on a host without a record naming it only until its first line.
 */
export type OnStarted = (p: StartedProcess) => void;

/** Whether a forwarded agent is behind the target's stable link now. */
export interface AgentState {
  up: boolean;
  lastError?: string;
}

export interface KeepEvents {
  /** A dead relay was started again. */
  onRelayRestart: (e: { host: string; oldPid: number; relay: RelayStarted; restarts: number }) => void;
  /** Something could not be healed or re-attached (`who`: a host, or a consumer such as `-L 8080:…`). */
  onTrouble: (who: string, why: string) => void;
  /** The kept chain went down or came back (for status). */
  onChain?: (state: ChainState) => void;
}

export interface Runner {
  /**
   * Opens the ssh chain to every host of the route, client side first; login
   * prompts happen here. `onReady` is told each host as it is open: steps on
   * it may start while later hops still connect. Resolves with the numeric
   * address the first connection reached: undefined when a ProxyCommand
   * reached it and its name does not resolve here (only tcp needs none).
   */
  connect(onReady?: (host: string) => void): Promise<{ reachedAddress: string | undefined }>;
  startServer(step: ServerStep, onStarted?: OnStarted): Promise<ServerStarted>;
  /**
   * Starts a relay; `forwardPort` when the plan says it needs its next hop at
   * start (socat, nc). Undefined when it could only start once wired (auto
   * falling back to socat): wireRelay starts it then.
   */
  startRelay(step: RelayStep, forwardPort?: number, onStarted?: OnStarted): Promise<RelayStarted | undefined>;
  /** Tells the relay of `step` where to forward; resolves with the relay when it only starts now. */
  wireRelay(step: RelayStep, forwardPort: number, onStarted?: OnStarted): Promise<RelayStarted | undefined>;
  /**
   * tcp transport: a UDP port on this machine's loopback whose datagrams reach
   * mosh-server at `server` (as the target reaches it) inside the ssh chain, kept up (a new
   * forwarder over a new chain after a roam) until close().
   * transport auto (`udp` given): the port sends on to `udp` instead, and
   * switches to the forwarder when UDP goes unanswered (step.udpFirst says how
   * long), and back when UDP passes again, telling `onSwitch` each time.
   */
  startForward(
    step: ForwardStep,
    server: { address: string; port: number },
    udp?: { address: string; port: number },
    onSwitch?: (change: PathChange) => void,
  ): Promise<ForwardStarted>;
  /**
   * A port forward kept for the whole session: local and dynamic listen on
   * this machine from now until close(); remote is asked of the target now and
   * again on each new chain. Resolves once it works; `onStatus` is told every
   * change (connections, the chain going and coming back).
   */
  startPortForward(step: PortForwardStep, onStatus: (s: ForwardStatus) => void): Promise<ForwardStatus>;
  /**
   * Agent forwarding to the target only: resolves once step.socket on the
   * target points at the agent forwarded over the current chain; after each
   * reconnect it is pointed at the new one, and `onStatus` says so.
   */
  startAgent(step: AgentStep, onStatus: (s: AgentState) => void): Promise<void>;
  /** Removes the agent link `socket` on `host` (teardown; `down` from elsewhere): gone when there was none. */
  unlinkAgent(host: string, socket: string): Promise<'removed' | 'gone'>;
  /** Runs mosh-client (`program`) in the foreground against a numeric address; resolves with its exit code. */
  runClient(program: ClientProgram, address: string, port: number, key: string): Promise<number>;
  /**
   * Stops a process by pid; "gone" when it had already exited, "unknown" when
   * the host cannot tell (no /proc and no usable ps: nothing was signalled).
   * `started`: the recorded start time, checked before signalling when given.
   */
  stop(host: string, pid: number, kind: ProcessKind, started?: string): Promise<StopOutcome>;
  /**
   * Whether that process still runs as itself (pid, start, command line);
   * unknown when the host cannot tell, undefined when its answer made no sense.
   */
  alive(host: string, pid: number, kind: ProcessKind, started?: string): Promise<Liveness | undefined>;
  /**
   * From set-up's end until the returned function is called (before
   * teardown): the chain is kept (opened again after a roam, quietly, while
   * mosh-client owns the terminal), whatever lives on it re-attaches, and the
   * relays are healed. What happens is told through `events`.
   */
  keep?(events: KeepEvents): () => Promise<void>;
  /** Closes every ssh connection; safe to call twice. */
  close(): Promise<void>;
}

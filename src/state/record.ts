// What `up` created, written as it goes, so `down` can undo it from another
// process, after a crash, or after the config changed. Hosts are copied in
// full for that reason. The session key is never part of it: nothing after
// mosh-client's start needs the key.
import type { RelayRuntime, SshHost } from '../config/types.js';
import type { ForwardStatus } from '../forward/types.js';

/**
 * (5, still: `path` is a field only status reads, and a reader of 5 without it
 * reads such a record whole.)
 * 5: `forwards`, `agent` and `chain`: how the port forwards, the forwarded
 * agent and the kept chain of a running `up` do, for status; `agent.socket`
 * for teardown. 4: `keeper` (the shell mosh-server is started in, before its own pid is
 * known) and `cleanup` (a detached `moshctl down` finishing for an `up` that
 * stopped waiting). 3: `bootId` and `startTime`, so a pid is only taken for
 * the `up` process while it is that very process. 2: hosts as ssh_config
 * resolves them. Older records are upgraded on reading (store.ts); newer ones
 * are left alone.
 */
export const RECORD_VERSION = 5;

/** What teardown needs to reach a hop again, copied from the config at `up`. */
export type RecordedHop = SshHost;

export interface RecordedProcess {
  host: string;
  pid: number;
  port: number;
  /** The process's start on its host (field 22 of /proc/PID/stat), when known: stops check it, so a reused pid is never signalled. */
  started?: string;
}

export interface SessionRecord {
  /** RECORD_VERSION once read: the store upgrades older records and refuses newer ones. */
  version: typeof RECORD_VERSION;
  id: string;
  name: string;
  /** The config files `up` read: `down` without NAME stops the sessions of these. */
  configFiles: string[];
  createdAt: string;
  /** The `up` process; `down` signals it so its mosh-client ends too. */
  pid: number;
  /** os.hostname() of the machine `up` ran on: a state directory on a shared home must not signal a stranger's pid. */
  machine: string;
  /** /proc/sys/kernel/random/boot_id at `up` (Linux): a pid means nothing after a reboot. Absent elsewhere. */
  bootId?: string;
  /**
   * When the `up` process started, in clock ticks after boot (/proc/PID/stat field 22, Linux):
   * with `machine` and `bootId` it names that process, not whichever later gets its pid. Absent elsewhere.
   */
  startTime?: string;
  /** Hops, client side first, then the target. */
  route: RecordedHop[];
  server?: RecordedProcess;
  /**
   * The shell on the server's host that runs `mosh-server new`, from its
   * first line until mosh-server's own pid is recorded (then it is dropped):
   * teardown stops it, and it stops the mosh-server it started.
   */
  keeper?: Omit<RecordedProcess, 'port'>;
  /** Client side first. `restarts`: how often moshctl started it again while the session ran. */
  relays: (RecordedProcess & { runtime: RelayRuntime; restarts?: number })[];
  networkTimeout: number;
  /** `up --no-connect`: no moshctl process owns the session; a client elsewhere uses it until `down`. */
  detached?: boolean;
  /** Set when `up` stopped waiting (a second signal) and left the teardown to a detached `moshctl down`. */
  cleanup?: CleanupProcess;
  /** Port forwards of the `up` process, as they do now (written as they change, throttled). */
  forwards?: ForwardStatus[];
  /** Agent forwarding: the stable link on the target (teardown removes it) and whether a forwarded agent is behind it now. */
  agent?: { host: string; socket: string; up: boolean; lastError?: string };
  /** The kept ssh chain while mosh-client runs: whether it is up, how often it came back, and why it last went. */
  chain?: { up: boolean; reconnects: number; lastError?: string; since?: string };
  /** Transports tcp and auto: how mosh's datagrams travel now (see SessionPath). */
  path?: SessionPath;
}

/**
 * How a tcp or auto session's datagrams travel, as its `up` last wrote it:
 * `via` udp (through the relays) or tcp (inside the ssh chain) since `since`
 * (ISO 8601), how often it `changes`d (auto: to tcp when UDP went silent,
 * back to udp when UDP passed again), and, for auto, why it cannot come back
 * from tcp when it cannot (`noReturn`).
 */
export interface SessionPath {
  via: 'udp' | 'tcp';
  since: string;
  changes: number;
  noReturn?: string;
}

/**
 * The `moshctl down --id ID` an `up` left to finish its teardown, on the
 * machine of the `up`. Its output goes to `ID.log` beside the record
 * (SessionStore.logFile), which lives as long as the record.
 */
export interface CleanupProcess {
  /** Absent for the moment between writing the record and starting the process. */
  pid?: number;
  /** As SessionRecord.startTime, for this process. */
  startTime?: string;
  /** When `up` handed the teardown over (ISO 8601). */
  since: string;
}

// What `up` created, written as it goes, so `down` can undo it from another
// process, after a crash, or after the config changed. Hosts are copied in
// full for that reason. The session key is never part of it: nothing after
// mosh-client's start needs the key.
import type { RelayRuntime, SshHost } from '../config/types.js';

export const RECORD_VERSION = 2;

/** What teardown needs to reach a hop again, copied from the config at `up`. */
export type RecordedHop = SshHost;

export interface RecordedProcess {
  host: string;
  pid: number;
  port: number;
}

export interface SessionRecord {
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
  /** Hops, client side first, then the target. */
  route: RecordedHop[];
  server?: RecordedProcess;
  /** Client side first. `restarts`: how often moshctl started it again while the session ran. */
  relays: (RecordedProcess & { runtime: RelayRuntime; restarts?: number })[];
  networkTimeout: number;
  /** `up --no-connect`: no moshctl process owns the session; a client elsewhere uses it until `down`. */
  detached?: boolean;
}

// Port forwards as ssh takes them (-L, -R, -D, LocalForward, RemoteForward,
// DynamicForward), as data: parsed and checked once (spec.ts), then planned,
// run and shown. Nothing here ever reaches a shell: the ssh layer carries
// endpoints as protocol fields (direct-tcpip, tcpip-forward) or argv.

/** A TCP address (a host name or IP literal, without brackets) or a Unix socket path. */
export type Endpoint = { host: string; port: number } | { path: string };

/** local: -L (listens here, connects from the target); remote: -R (the reverse); dynamic: -D (SOCKS here). */
export type ForwardKind = 'local' | 'remote' | 'dynamic';

export interface ForwardSpec {
  kind: ForwardKind;
  /**
   * Where connections are accepted: on this machine for local and dynamic, on
   * the target for remote. `host` undefined: loopback (127.0.0.1 here, as ssh
   * binds it; for remote, `localhost` is asked of the target's sshd, as ssh does).
   * `host` `*`: every interface (ssh's `*` or empty bind address, or GatewayPorts
   * yes without one). `port` 0 (remote only): the target's sshd chooses.
   */
  listen: { host?: string; port: number } | { path: string };
  /**
   * Where each connection goes: reached from the target for local, from this
   * machine for remote. Absent for dynamic: each SOCKS request names its own,
   * resolved at the target.
   */
  to?: Endpoint;
  /**
   * ssh's own form, as spec.ts writes it from the fields (ssh reads it back the
   * same, whatever was typed or ssh_config said): `-L 8080:localhost:80`. For
   * plan, status, messages, and telling two forwards apart.
   */
  text: string;
  /** Where it was asked for: `command line`, `moshproxy.yaml:12` (file:line), or `ssh_config`. */
  source: string;
}

/** How a forward does, for `status` (written to the session record by the `up` process). */
export interface ForwardStatus {
  /** ForwardSpec.text */
  text: string;
  /** local, dynamic: the listener is bound here; remote: the target's sshd accepted the forward on the current chain. */
  listening: boolean;
  /** remote with port 0: the port the target chose. */
  port?: number;
  /** Connections open now. */
  open: number;
  /** Connections since the session started. */
  total: number;
  /** Connections that ended because the chain under them broke (a roam, an outage), as with ssh. */
  broken: number;
  /** Connections refused: the chain did not come back in time, or the far side refused. */
  refused: number;
  /** The last thing that went wrong, e.g. `connect to localhost:80 from target: Connection refused`. */
  lastError?: string;
}

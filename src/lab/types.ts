// The shapes of the Lab API, apart from the class, so the build steps
// (build.ts) and the Lab itself (index.ts) share them without a cycle.

import type { HostName, Ipv6Layout } from './topology.js';

export interface LabOptions {
  bastions?: 1 | 2;
  /** Namespace name prefix; default "mctl". Names are `<prefix>-<runid>-<host>`. */
  prefix?: string;
  /** Leave the lab up after this process exits (`lab up`); only `down`/`cleanup` remove it. */
  persistent?: boolean;
  /**
   * Hosts whose sshd wants a key and then a one-time code (Lab.otpCode) by
   * keyboard-interactive, as behind Duo; root may log in there too.
   */
  kbdInteractive?: HostName[];
  /**
   * Per host, absolute paths that its sshd and every session there see as
   * /dev/null, which cannot run: a way to take a program (e.g. the real python3
   * binary, see realProgramPath) away from one host only.
   */
  hide?: Partial<Record<HostName, string[]>>;
  /** `ssh_client:` under `defaults:` in the lab's moshproxy.yaml; default ssh2 (the line is left out). */
  sshClient?: 'ssh2' | 'openssh';
  /**
   * Per host, lines put first in its sshd_config, so they win over the lab's
   * own (sshd keeps a keyword's first value): `AllowTcpForwarding no`,
   * `Banner /etc/issue.net`, `PrintMotd yes`. No `Match`: it would capture
   * the lab's lines after it.
   */
  sshdConfig?: Partial<Record<HostName, string[]>>;
  /**
   * Per host, lab files bind-mounted over system paths that only that host's
   * sshd and its sessions see (as `hide` does with /dev/null): a stand-in
   * program, a login user's ~/.bashrc, /etc/motd, or an empty folder over a
   * locale folder. Lab.mountedFile() names the lab's copy; rewriting a file
   * in place (writeFileSync keeps its inode) or filling the folder changes
   * what new sessions there see.
   */
  mounts?: Partial<Record<HostName, LabMount[]>>;
  /**
   * Hosts (with sshd) also reached through an access broker, as with AWS SSM
   * or `cloudflared access ssh`: their sshd listens on their own loopback too,
   * and a bridge on a unix socket (Lab.brokerSocket) joins each caller to it,
   * so a ProxyCommand (Lab.brokerProxyCommand) reaches them from the client
   * namespace with no network path. Their other addresses stay as they are.
   */
  broker?: HostName[];
  /**
   * Hosts whose ssh sessions see a busybox userland, as on Alpine or OpenWrt:
   * busybox ash as root's login shell and /bin/sh, a PATH of busybox applets
   * and mosh-server only, and no bash, python3, perl, procps ps, tmux or
   * screen even by absolute path (userlands.ts). Not the machine's own view
   * (`exec` and `pidsIn` still see everything).
   */
  busybox?: HostName[];
  /**
   * Hosts that run Dropbear (Debian's dropbear-bin) instead of OpenSSH's sshd,
   * with the same host key and root's lab key: no host certificates, user
   * certificates, one-time codes, sshd_config lines or broker there.
   */
  dropbear?: HostName[];
  /**
   * IPv6 (2001:db8::/32, static) and an IPv6-only target; see topology.ts.
   * `behind-bastion`: an IPv4-only client, a dual-stack bastion, and a target
   * it reaches over IPv6 only (its sshd listens there, target.lab.test and the
   * config name that address). `direct` (one bastion): the LAN is dual-stack
   * and the bastion routes IPv6, so the client reaches the target's IPv6
   * address itself and the config names it with no `via`.
   */
  ipv6?: Ipv6Layout;
}

/** What `mounts` puts over one path: a file with `text` (mode 0755), or an empty folder. */
export type LabMount = { target: string; text: string } | { target: string; emptyDir: true };

export interface LabHost {
  ns: string;
  addresses: string[];
  /** The address the client side uses for this host's sshd. */
  sshAddress: string;
  /** `<host>.lab.test`: every lab namespace resolves it to sshAddress (via /etc/hosts). */
  dnsName: string;
}

export interface LabHosts {
  client: LabHost;
  bastion: LabHost;
  bastion2?: LabHost;
  target: LabHost;
  outsider: LabHost;
}

export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface SshArgvOptions {
  /** Name every host by its lab.test name instead of its address (the hops too). */
  names?: boolean;
  /** The user on the destination (the jump hops stay root); default root. */
  user?: string;
}

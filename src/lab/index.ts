// The lab: a few hosts in network namespaces (client, bastion(s), target,
// outsider) with real sshd servers, for end-to-end tests and the demo.
// See topology.ts for the network drawing. Everything a lab creates is
// recorded in the registry first, so destroy() (or a later cleanupStale())
// can remove it even after a crash half-way through create().
//
// Every host has a name under lab.test, every sshd a host certificate and a
// trusted user CA; chosen hosts ask for a one-time code or lack a program;
// local test users (setup.sh) log in with different shells, and an ordinary
// client user can run commands. lab-core.ts has the namespaces and processes.

import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { isIPv6 } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  brokerSocketPath,
  checkSocketPath,
  faultCommandFor,
  hangingBrokers,
  pickBrokered,
  proxyCommandFor,
  type BrokerFault,
} from './broker.js';
import { writeBrokerSshConfig, type BrokerSshConfig, type BrokerSshConfigOptions } from './broker-config.js';
import { buildLab, checkOptions } from './build.js';
import {
  labConfigText,
  labFilePaths,
  writeLabFile,
  type ConfigTextOptions,
  type LabFilePaths,
} from './lab-files.js';
import { LabCore } from './lab-core.js';
import { labMountSource, newOtpCode } from './mounts.js';
import { refOf } from './proc.js';
import { DEFAULT_PREFIX, cleanupStale } from './registry.js';
import { readHostPublicKey } from './sshd.js';
import type { HostName } from './topology.js';
import type { LabMount, LabOptions, SshArgvOptions } from './types.js';
import {
  asUserArgv,
  clientUserFilePaths,
  findLabUsers,
  writeUserFile,
  type ClientUserFiles,
  type LabUser,
} from './users.js';

export type { HostName, Ipv6Layout, LinkName } from './topology.js';
export type { RunResult } from './proc.js';
export { childrenOf } from './proc.js';
export type { ExecOptions, LabHost, LabHosts, LabMount, LabOptions, SshArgvOptions } from './types.js';
export type { ConfigTextOptions } from './lab-files.js';
export { BROKER_SSO_URL, type BrokerFault } from './broker.js';
export type {
  BrokerHostEntry,
  BrokerJumpEntry,
  BrokerSshConfig,
  BrokerSshConfigOptions,
} from './broker-config.js';
export { Tmux, type TmuxOptions } from './tmux.js';
export { DEFAULT_PREFIX } from './registry.js';
export { findLeftovers, type Leftovers } from './leftovers.js';
export { realProgramPath } from './mounts.js';
export { multiplexerServers, stopMultiplexerServers, type MultiplexerServer } from './multiplexers.js';
export { CLIENT_USER, LOGIN_USERS, findLabUsers, type ClientUserFiles, type LabUser } from './users.js';
export {
  freeTcpPort,
  freeTcpPorts,
  httpServerArgv,
  serveHttp,
  spawnTracked,
  startAgent,
  type HttpRuntime,
  type HttpServer,
  type LabAgent,
  type LabProcess,
} from './services.js';
export { agentExposure, type AgentExposure } from './agent-exposure.js';

/** The repository root, from dist/lab/ or src/lab/ alike. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export class Lab extends LabCore {
  readonly configFile: string;
  readonly keyFile: string;
  readonly knownHostsFile: string;
  /** An OpenSSH client config with the lab key and known_hosts (`ssh -F` passes it to -J hops too). */
  readonly sshConfigFile: string;
  /** known_hosts with one `@cert-authority` line (the lab's host CA) for every lab address and name. */
  readonly caKnownHostsFile: string;
  /** A client key in no authorized_keys; `<key>-cert.pub` beside it is signed by the lab's user CA. */
  readonly certOnlyKeyFile: string;
  /** The one-time code the kbdInteractive hosts ask for (six digits, new for each lab). */
  readonly otpCode = newOtpCode();
  readonly kbdInteractive: readonly HostName[];
  /** The ssh client the lab's moshproxy.yaml asks for. */
  readonly sshClient: 'ssh2' | 'openssh';
  readonly hide: Readonly<Partial<Record<HostName, string[]>>>;
  readonly sshdConfig: Readonly<Partial<Record<HostName, string[]>>>;
  readonly mounts: Readonly<Partial<Record<HostName, LabMount[]>>>;
  /** Hosts also reached through an access broker (LabOptions.broker). */
  readonly broker: readonly HostName[];
  /** Hosts whose sessions see busybox only (LabOptions.busybox). */
  readonly busybox: readonly HostName[];
  /** Hosts that run Dropbear instead of sshd (LabOptions.dropbear). */
  readonly dropbear: readonly HostName[];
  private readonly servers = new Map<HostName, number>();
  /** The test login users that exist here (LOGIN_USERS has the shell each should have). */
  readonly loginUsers: readonly LabUser[];
  /** The ordinary local user that runs moshctl in tests, when it exists. */
  readonly clientUser: LabUser | undefined;
  /** The client user's own copies of the lab's keys and known_hosts, when that user exists. */
  readonly clientUserFiles: ClientUserFiles | undefined;
  /** Why tests that need the test users cannot run (some are missing), or undefined. */
  readonly usersMissing: string | undefined;
  private readonly paths: LabFilePaths;

  private constructor(runId: string, prefix: string, dir: string, opts: LabOptions) {
    super(runId, prefix, dir, opts.bastions ?? 1, opts.persistent ? null : refOf(process.pid), opts.ipv6);
    this.kbdInteractive = [...(opts.kbdInteractive ?? [])];
    this.sshClient = opts.sshClient ?? 'ssh2';
    this.hide = { ...opts.hide };
    this.sshdConfig = { ...opts.sshdConfig };
    this.mounts = { ...opts.mounts };
    this.broker = [...(opts.broker ?? [])];
    this.busybox = [...(opts.busybox ?? [])];
    this.dropbear = [...(opts.dropbear ?? [])];
    checkOptions({
      plan: this.plan,
      kbdInteractive: this.kbdInteractive,
      hide: this.hide,
      sshdConfig: this.sshdConfig,
      mounts: this.mounts,
      broker: this.broker,
      busybox: this.busybox,
      dropbear: this.dropbear,
    });
    for (const h of this.broker) checkSocketPath(brokerSocketPath(dir, h));
    this.paths = labFilePaths(dir);
    this.configFile = this.paths.configFile;
    this.keyFile = this.paths.keyFile;
    this.knownHostsFile = this.paths.knownHostsFile;
    this.sshConfigFile = this.paths.sshConfigFile;
    this.caKnownHostsFile = this.paths.caKnownHostsFile;
    this.certOnlyKeyFile = this.paths.certOnlyKeyFile;
    const users = findLabUsers();
    this.loginUsers = users.login;
    this.clientUser = users.client;
    this.usersMissing = users.missing;
    this.clientUserFiles = users.client ? clientUserFilePaths(dir) : undefined;
  }

  static async create(opts: LabOptions = {}): Promise<Lab> {
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    if (!/^[a-z][a-z0-9]{0,11}$/.test(prefix)) throw new Error(`bad lab prefix "${prefix}"`);
    await cleanupStale(prefix);
    const runId = randomBytes(3).toString('hex');
    const dir = mkdtempSync(join(tmpdir(), `moshctl-lab-${runId}-`));
    // Traversable, not listable: sshd reads authorized_keys here as the user
    // logging in, and the client user reaches its own subdir. Files stay 0600 unless public.
    chmodSync(dir, 0o711);
    let lab: Lab;
    try {
      lab = new Lab(runId, prefix, dir, opts);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true }); // bad options: nothing else exists yet
      throw err;
    }
    lab.save(); // before any namespace exists, see registry.ts
    try {
      await lab.build();
    } catch (err) {
      await lab.destroy().catch(() => undefined);
      throw err;
    }
    return lab;
  }

  /** Remove labs whose owner process is dead. create() calls this itself. */
  static cleanupStale(prefix = DEFAULT_PREFIX): Promise<string[]> {
    return cleanupStale(prefix);
  }

  private build(): Promise<void> {
    const { clientUser, clientUserFiles } = this;
    return buildLab({
      runId: this.runId,
      dir: this.dir,
      plan: this.plan,
      paths: this.paths,
      kbdInteractive: this.kbdInteractive,
      sshClient: this.sshClient,
      hide: this.hide,
      sshdConfig: this.sshdConfig,
      mounts: this.mounts,
      broker: this.broker,
      busybox: this.busybox,
      dropbear: this.dropbear,
      otpCode: this.otpCode,
      clientUser: clientUser && clientUserFiles ? { user: clientUser, files: clientUserFiles } : undefined,
      host: (h) => this.host(h),
      spawn: (h, argv, o) => this.spawn(h, argv, o),
      exec: (h, argv, o) => this.exec(h, argv, o),
      onServer: (h, pid) => this.servers.set(h, pid),
    });
  }

  /**
   * The pid of `host`'s ssh server listener (sshd, or Dropbear, whose
   * per-connection processes have the very same command line).
   */
  serverPid(host: HostName): number {
    const pid = this.servers.get(host);
    if (pid === undefined) throw new Error(`${host} runs no ssh server in this lab`);
    return pid;
  }

  /**
   * The lab's copy of what LabOptions.mounts put over `target` on `host`: a
   * file to rewrite in place, or the folder to fill. Sessions started after a
   * change see it.
   */
  mountedFile(host: HostName, target: string): string {
    const index = (this.mounts[host] ?? []).findIndex((m) => m.target === target);
    if (index < 0) throw new Error(`this lab mounts nothing over ${target} on ${host}`);
    return labMountSource(this.dir, host, index, target);
  }

  /** argv prefix that runs a command as the client (append the command). */
  clientCommand(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.host('client').ns, ...argv];
  }

  /**
   * argv running `argv` as the client user with a login-like clean environment
   * (HOME, USER, LOGNAME, PATH, SHELL, LANG=C.UTF-8, plus `env`) and this lab's
   * own home for it (clientUserFiles.home over its passwd home), to be run in
   * a namespace: with exec(), spawn() or Tmux (option asClientUser).
   */
  asClientUser(argv: readonly string[], env: Record<string, string> = {}): string[] {
    if (!this.clientUser) throw new Error(this.usersMissing ?? 'no client user');
    return asUserArgv(this.clientUser, argv, env, this.clientUserFiles?.home);
  }

  /** Full argv running `argv` as the client user in the client namespace. */
  clientCommandAs(argv: readonly string[], env: Record<string, string> = {}): string[] {
    return this.clientCommand(this.asClientUser(argv, env));
  }

  /** Write a file in clientUserFiles.dir, 0600 and owned by the client user; returns its path. */
  writeClientUserFile(name: string, text: string): string {
    if (!this.clientUser || !this.clientUserFiles) throw new Error(this.usersMissing ?? 'no client user');
    return writeUserFile(this.clientUserFiles, this.clientUser, name, text);
  }

  /**
   * The unix socket of `host`'s broker bridge (default: the first brokered
   * host). Anyone may connect, from any namespace; it leads to that host's sshd.
   */
  brokerSocket(host?: HostName): string {
    return brokerSocketPath(this.dir, pickBrokered(this.broker, host));
  }

  /** The ProxyCommand a user would write for `host`'s broker: `nc -U <socket>`. */
  brokerProxyCommand(host?: HostName): string {
    return proxyCommandFor(this.brokerSocket(host));
  }

  /** A ProxyCommand for a broker that fails (see BrokerFault); `sso` then connects to `host`. */
  brokerFaultCommand(fault: BrokerFault, host?: HostName): string {
    return faultCommandFor(fault, this.brokerSocket(host));
  }

  /**
   * A broker's network endpoint, as a cloud broker's is (SSM, IAP): a TCP
   * port on `on` (a host the client reaches) that joins each caller to
   * `host`'s bridge. Its ProxyCommand, `nc ADDRESS PORT`, then crosses the
   * client's own network, so a roam or an outage breaks it as it would a
   * real broker's, while `host` itself stays out of the client's reach.
   * Stopped (with its children) by destroy(). Returns the ProxyCommand and
   * the listener's pid (its children are the connections through it).
   */
  async brokerEndpoint(
    on: HostName,
    port: number,
    host?: HostName,
  ): Promise<{ proxyCommand: string; pid: number }> {
    const socket = this.brokerSocket(host);
    if (!Number.isInteger(port) || port < 1024 || port > 65535)
      throw new Error(`brokerEndpoint: bad port ${port}`);
    const pid = this.spawn(on, ['socat', `TCP4-LISTEN:${port},fork,reuseaddr`, `UNIX-CONNECT:${socket}`], {
      forks: true,
    });
    const address = this.host(on).sshAddress;
    const deadline = Date.now() + 10_000;
    while (!(await this.canReach('client', address, port))) {
      if (Date.now() > deadline) throw new Error(`brokerEndpoint: ${address}:${port} does not answer`);
      await sleep(50);
    }
    return { proxyCommand: `nc ${address} ${port}`, pid };
  }

  /** Hanging brokers (brokerFaultCommand('hang')) still running: ssh runs them in the client namespace. */
  async hangingBrokerPids(): Promise<number[]> {
    return hangingBrokers(await this.pidsIn('client'));
  }

  /**
   * Writes an ssh_config for brokered hosts (each a Host alias with an
   * unresolvable HostName and a ProxyCommand) and hosts behind them
   * (ProxyJump), with a known_hosts holding each brokered host's key under its
   * HostName plus the lab's own lines. For root in the lab dir, or with
   * `clientUser` in the client user's dir with its key. Returns the paths and the text.
   */
  brokerSshConfig(opts: BrokerSshConfigOptions): BrokerSshConfig {
    const files = opts.clientUser ? this.clientUserFiles : this.paths;
    if (!files) throw new Error(this.usersMissing ?? 'no client user');
    return writeBrokerSshConfig(
      {
        runId: this.runId,
        brokered: this.broker,
        servers: this.plan.hosts.filter((h) => h.runsSshd).map((h) => h.name),
        dnsName: (h) => this.host(h).dnsName,
        proxyCommand: (h) => this.brokerProxyCommand(h),
        hostPublicKey: (h) => readHostPublicKey(this.dir, h),
        keyFile: files.keyFile,
        knownHostsText: readFileSync(files.knownHostsFile, 'utf8'),
        write: (name, text) =>
          opts.clientUser ? this.writeClientUserFile(name, text) : writeLabFile(this.dir, name, text),
      },
      opts,
    );
  }

  /** argv to run the moshctl CLI of this repository as the client, with the lab's config. */
  moshctlCommand(args: readonly string[]): string[] {
    return this.clientCommand([
      process.execPath,
      join(REPO_ROOT, 'bin', 'moshctl.js'),
      '-f',
      this.configFile,
      ...args,
    ]);
  }

  /**
   * A moshproxy.yaml for this lab: by default the text of configFile; with
   * `names`, hosts by their lab.test names; another key, known_hosts or user on request.
   */
  configText(opts: ConfigTextOptions = {}): string {
    return labConfigText(this.paths, { servers: this.plan.hosts, sshClient: this.sshClient }, opts);
  }

  /** `ssh` argv (run it as the client) reaching `host` through its bastions with the lab's key. */
  sshArgv(host: HostName, remote: readonly string[] = [], opts: SshArgvOptions = {}): string[] {
    const plan = this.plan.hosts.find((h) => h.name === host);
    if (!plan) throw new Error(`this lab has no host "${host}"`);
    const nameOf = (h: HostName): string => (opts.names ? this.host(h).dnsName : this.host(h).sshAddress);
    // -J takes [user@]host[:port], so an IPv6 address there needs its brackets.
    const jumpName = (h: HostName): string => (isIPv6(nameOf(h)) ? `[${nameOf(h)}]` : nameOf(h));
    const jump = plan.via.map((v) => `root@${jumpName(v)}`).join(',');
    return [
      'ssh',
      '-F',
      this.sshConfigFile,
      ...(jump ? ['-J', jump] : []),
      `${opts.user ?? 'root'}@${nameOf(host)}`,
      ...remote,
    ];
  }
}

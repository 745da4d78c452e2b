// The lab: a few hosts in network namespaces (client, bastion(s), target,
// outsider) with real sshd servers, for end-to-end tests and the demo.
// See topology.ts for the network drawing. Everything a lab creates is
// recorded in the registry first, so destroy() (or a later cleanupStale())
// can remove it even after a crash half-way through create().

import { spawn as spawnChild } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { labFilePaths, writeLabFiles } from './lab-files.js';
import { buildNetwork, findLink, setDropShare, setLinkState } from './network.js';
import { isAlive, refOf, run, type ProcRef, type RunResult } from './proc.js';
import {
  DEFAULT_PREFIX,
  cleanupStale,
  pidsInNamespace,
  teardown,
  writeRecord,
  type LabRecord,
} from './registry.js';
import { sshdArgv, type SshdFiles } from './sshd.js';
import {
  CLIENT_ADDRESS,
  addressesOf,
  nextClientAddress,
  planTopology,
  type HostName,
  type LinkName,
  type TopologyPlan,
} from './topology.js';

export type { HostName, LinkName } from './topology.js';
export type { RunResult } from './proc.js';
export { Tmux, type TmuxOptions } from './tmux.js';
export { DEFAULT_PREFIX } from './registry.js';
export { findLeftovers, type Leftovers } from './leftovers.js';

export interface LabOptions {
  bastions?: 1 | 2;
  /** Namespace name prefix; default "mctl". Names are `<prefix>-<runid>-<host>`. */
  prefix?: string;
  /** Leave the lab up after this process exits (`lab up`); only `down`/`cleanup` remove it. */
  persistent?: boolean;
}

export interface LabHost {
  ns: string;
  addresses: string[];
  /** The address the client side uses for this host's sshd. */
  sshAddress: string;
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

/** The repository root, from dist/lab/ or src/lab/ alike. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export class Lab {
  readonly configFile: string;
  readonly keyFile: string;
  readonly knownHostsFile: string;
  /** An OpenSSH client config with the lab key and known_hosts (`ssh -F` passes it to -J hops too). */
  readonly sshConfigFile: string;
  readonly hosts: LabHosts;
  private readonly plan: TopologyPlan;
  private readonly tracked = new Map<number, ProcRef>();
  private readonly owner: ProcRef | null;
  private destroying: Promise<void> | undefined;

  private constructor(
    readonly runId: string,
    readonly prefix: string,
    readonly dir: string,
    readonly bastions: 1 | 2,
    persistent: boolean,
  ) {
    this.plan = planTopology(bastions);
    const paths = labFilePaths(dir);
    this.configFile = paths.configFile;
    this.keyFile = paths.keyFile;
    this.knownHostsFile = paths.knownHostsFile;
    this.sshConfigFile = paths.sshConfigFile;
    this.owner = persistent ? null : refOf(process.pid);
    const hosts: Partial<Record<HostName, LabHost>> = {};
    for (const h of this.plan.hosts) {
      hosts[h.name] = {
        ns: `${prefix}-${runId}-${h.name}`,
        addresses: addressesOf(this.plan, h.name),
        sshAddress: h.sshAddress,
      };
    }
    this.hosts = hosts as LabHosts;
  }

  static async create(opts: LabOptions = {}): Promise<Lab> {
    const prefix = opts.prefix ?? DEFAULT_PREFIX;
    if (!/^[a-z][a-z0-9]{0,11}$/.test(prefix)) throw new Error(`bad lab prefix "${prefix}"`);
    await cleanupStale(prefix);
    const runId = randomBytes(3).toString('hex');
    const dir = mkdtempSync(join(tmpdir(), `moshctl-lab-${runId}-`));
    chmodSync(dir, 0o700);
    const lab = new Lab(runId, prefix, dir, opts.bastions ?? 1, opts.persistent ?? false);
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

  host(name: HostName): LabHost {
    const h = this.hosts[name];
    if (!h) throw new Error(`this lab has no host "${name}"`);
    return h;
  }

  record(): LabRecord {
    return {
      runId: this.runId,
      prefix: this.prefix,
      owner: this.owner,
      dir: this.dir,
      namespaces: this.plan.hosts.map((h) => this.host(h.name).ns),
      pids: [...this.tracked.values()],
      createdAt: new Date().toISOString(),
    };
  }

  private save(): void {
    writeRecord(this.record());
  }

  private async build(): Promise<void> {
    mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
    const nsOf = (h: HostName): string => this.host(h).ns;
    const servers = this.plan.hosts.filter((h) => h.runsSshd);
    // Keys and files are made while the kernel brings the links up; both are
    // awaited before any failure is reported, so destroy() never races a half-run step.
    const [network, written] = await Promise.allSettled([
      buildNetwork(this.plan, nsOf),
      writeLabFiles(this, {
        dir: this.dir,
        runId: this.runId,
        bastions: this.bastions,
        servers,
        addressesOf: (h) => this.host(h).addresses,
      }),
    ]);
    if (network.status === 'rejected') throw network.reason;
    if (written.status === 'rejected') throw written.reason;
    const files = written.value;
    await Promise.all(
      servers.map(async (h, i) => {
        const f = files[i] as SshdFiles;
        const pid = this.spawn(h.name, sshdArgv(f), { logFile: f.log });
        await this.waitForSshd(h.name, h.probeFrom ?? h.name, pid, f.log);
      }),
    );
  }

  /** Poll from the neighbour that reaches it, so the link is proven as well as the listener. */
  private async waitForSshd(host: HostName, from: HostName, pid: number, log: string): Promise<void> {
    const ref = this.tracked.get(pid) ?? { pid };
    const address = this.host(host).sshAddress;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (!isAlive(ref)) {
        throw new Error(`sshd on ${host} exited: ${readFileSync(log, 'utf8').trim().slice(-800)}`);
      }
      const r = await this.exec(from, ['nc', '-z', '-w', '1', address, '22'], { timeoutMs: 3000 });
      if (r.code === 0) return;
      if (Date.now() > deadline) throw new Error(`sshd on ${host} (${address}) not reachable from ${from}`);
      await sleep(50);
    }
  }

  /** Run a command inside a host's namespace to completion. */
  exec(host: HostName, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.host(host).ns, ...argv], {
      ...opts,
      onPid: (pid) => this.tracked.set(pid, refOf(pid)),
      onExit: (pid) => this.tracked.delete(pid),
    });
  }

  /** Start a long-running process in a host's namespace; it is stopped at destroy(). */
  spawn(
    host: HostName,
    argv: readonly string[],
    opts: { logFile?: string; env?: NodeJS.ProcessEnv } = {},
  ): number {
    const out = opts.logFile ? openSync(opts.logFile, 'a', 0o600) : 'ignore';
    // `ip netns exec` execs the command in place, so this pid is the command's own.
    // Detached: a Ctrl-C on the terminal must not reach lab servers; destroy() stops them.
    const child = spawnChild('ip', ['netns', 'exec', this.host(host).ns, ...argv], {
      stdio: ['ignore', out, out],
      detached: true,
      env: opts.env ?? process.env,
    });
    if (typeof out === 'number') closeSync(out);
    child.on('error', () => undefined);
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
    this.track(pid);
    return pid;
  }

  /** Record a process started outside exec()/spawn() (e.g. a tmux server) so destroy() stops it. */
  track(pid: number): void {
    this.tracked.set(pid, refOf(pid));
    this.save();
  }

  /** pids in a host's namespace (everything there, whoever started it). */
  pidsIn(host: HostName): Promise<number[]> {
    return pidsInNamespace(this.host(host).ns);
  }

  /** argv prefix that runs a command as the client (append the command). */
  clientCommand(argv: readonly string[]): string[] {
    return ['ip', 'netns', 'exec', this.host('client').ns, ...argv];
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

  /** `ssh` argv (run it as the client) reaching `host` through its bastions with the lab's key. */
  sshArgv(host: HostName, remote: readonly string[] = []): string[] {
    const plan = this.plan.hosts.find((h) => h.name === host);
    if (!plan) throw new Error(`this lab has no host "${host}"`);
    const jump = plan.via.map((v) => `root@${this.host(v).sshAddress}`).join(',');
    return [
      'ssh',
      '-F',
      this.sshConfigFile,
      ...(jump ? ['-J', jump] : []),
      `root@${this.host(host).sshAddress}`,
      ...remote,
    ];
  }

  /** Can `from` open a TCP connection to address:port (within about a second)? */
  async canReach(from: HostName, address: string, port = 22): Promise<boolean> {
    const r = await this.exec(from, ['nc', '-z', '-w', '1', address, String(port)], { timeoutMs: 5000 });
    return r.code === 0;
  }

  /**
   * Move the client to a new address on its LAN (default: the next one up),
   * as a phone changing networks would. Returns the new address.
   */
  async roam(newAddress?: string): Promise<string> {
    const client = this.host('client');
    const old = client.addresses[0] ?? CLIENT_ADDRESS;
    const next = newAddress ?? nextClientAddress(old);
    if (!/^192\.0\.2\.(\d{1,3})$/.test(next) || ['192.0.2.1', '192.0.2.66'].includes(next)) {
      throw new Error(`roam: ${next} is not a free address in 192.0.2.0/24`);
    }
    const link = findLink(this.plan, 'client');
    // Removing the only address also drops the default route, so it is added back.
    const batch = [
      `addr del ${old}/24 dev ${link.farDev}`,
      `addr add ${next}/24 dev ${link.farDev}`,
      `route replace default via ${link.farGateway} dev ${link.farDev}`,
    ];
    const r = await run(['ip', '-n', client.ns, '-batch', '-'], { input: batch.join('\n') + '\n' });
    if (r.code !== 0) throw new Error(`roam to ${next}: ${r.stderr.trim()}`);
    client.addresses = [next];
    client.sshAddress = next;
    return next;
  }

  /** An outage: the bastion's end of a link goes down (the client keeps its address and routes). */
  linkDown(link: LinkName = 'client'): Promise<void> {
    return setLinkState(findLink(this.plan, link), (h) => this.host(h).ns, false);
  }

  linkUp(link: LinkName = 'client'): Promise<void> {
    return setLinkState(findLink(this.plan, link), (h) => this.host(h).ns, true);
  }

  /** Drop `percent` % of packets both ways on a link (nftables at its near end); 0 stops dropping. */
  dropShare(link: LinkName, percent: number): Promise<void> {
    return setDropShare(findLink(this.plan, link), (h) => this.host(h).ns, percent);
  }

  async clearDrops(): Promise<void> {
    for (const l of this.plan.links) await this.dropShare(l.name, 0);
  }

  /** Remove everything; safe to call more than once and after a failed create(). */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      const problems = await teardown(this.record());
      if (problems.length > 0) throw new Error(`lab ${this.runId} teardown: ${problems.join('; ')}`);
    })();
    return this.destroying;
  }
}

// The part of a Lab that owns namespaces and processes: running commands in
// a host's namespace, tracking every pid it starts, changing the network
// under a running test (roam, outage, loss) and tearing it all down. Lab
// (index.ts) adds the files, users and commands tests use on top of it.

import { spawn as spawnChild } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { writeNames } from './build.js';
import { findLink, moveAddresses, setDropShare, setLinkState, setUdpBlocked } from './network.js';
import { childrenOf, isAlive, refOf, run, stopAll, type ProcRef, type RunResult } from './proc.js';
import { pidsInNamespace, teardown, writeRecord, type LabRecord } from './registry.js';
import {
  addressesOf,
  lanIpv6For,
  nextClientAddress,
  planTopology,
  type HostName,
  type Ipv6Layout,
  type LinkName,
} from './topology.js';
import type { TopologyPlan } from './topology.js';
import type { ExecOptions, LabHost, LabHosts } from './types.js';

export class LabCore {
  readonly hosts: LabHosts;
  protected readonly plan: TopologyPlan;
  private readonly tracked = new Map<number, ProcRef>();
  /** Tracked listeners that fork a child per connection (spawn's `forks`). */
  private readonly forking = new Set<number>();
  private destroying: Promise<void> | undefined;

  protected constructor(
    readonly runId: string,
    readonly prefix: string,
    readonly dir: string,
    readonly bastions: 1 | 2,
    /** null for a lab left up on purpose (`lab up`). */
    private readonly owner: ProcRef | null,
    /** Where the lab has IPv6 (LabOptions.ipv6); undefined: nowhere. */
    readonly ipv6: Ipv6Layout | undefined,
  ) {
    this.plan = planTopology(bastions, ipv6);
    const hosts: Partial<Record<HostName, LabHost>> = {};
    for (const h of this.plan.hosts) {
      hosts[h.name] = {
        ns: `${prefix}-${runId}-${h.name}`,
        addresses: addressesOf(this.plan, h.name),
        sshAddress: h.sshAddress,
        dnsName: h.dnsName,
      };
    }
    this.hosts = hosts as LabHosts;
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

  protected save(): void {
    writeRecord(this.record());
  }

  /** Run a command inside a host's namespace to completion. */
  exec(host: HostName, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    return run(['ip', 'netns', 'exec', this.host(host).ns, ...argv], {
      ...opts,
      onPid: (pid) => this.tracked.set(pid, refOf(pid)),
      onExit: (pid) => this.tracked.delete(pid),
    });
  }

  /**
   * Start a long-running process in a host's namespace; it is stopped at
   * destroy(). `forks`: a listener with a child per connection (socat's fork),
   * whose children destroy() stops by pid with it, since they outlive it.
   */
  spawn(
    host: HostName,
    argv: readonly string[],
    opts: { logFile?: string; env?: NodeJS.ProcessEnv; forks?: boolean } = {},
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
    if (opts.forks) this.forking.add(pid);
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

  /** Can `from` open a TCP connection to address:port (within about a second)? */
  async canReach(from: HostName, address: string, port = 22): Promise<boolean> {
    const r = await this.exec(from, ['nc', '-z', '-w', '1', address, String(port)], { timeoutMs: 5000 });
    return r.code === 0;
  }

  /**
   * Move the client to a new address on its LAN (default: the next one up),
   * as a phone changing networks would. On a dual-stack LAN (ipv6 'direct')
   * its IPv6 address moves too, to the same host number (2001:db8:2::N for
   * 192.0.2.N). Returns the new IPv4 address; `hosts.client.addresses` has all.
   */
  async roam(newAddress?: string): Promise<string> {
    const client = this.host('client');
    const link = findLink(this.plan, 'client');
    const old4 = client.addresses.find((a) => isIPv4(a)) ?? client.sshAddress;
    const old6 = client.addresses.find((a) => isIPv6(a));
    const next = newAddress ?? nextClientAddress(old4);
    const next6 = link.ipv6 && old6 ? lanIpv6For(next) : undefined;
    await moveAddresses(link, client.ns, {
      ipv4: { old: old4, next },
      ...(old6 && next6 ? { ipv6: { old: old6, next: next6 } } : {}),
    });
    client.addresses = next6 ? [next, next6] : [next];
    client.sshAddress = next;
    writeNames(this.plan, (h) => this.host(h), this.runId); // client.lab.test follows
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

  /** Drop all UDP on a link, both ways (a network that lets only TCP through); false lets it pass again. */
  blockUdp(link: LinkName, on: boolean): Promise<void> {
    return setUdpBlocked(findLink(this.plan, link), (h) => this.host(h).ns, on);
  }

  async clearDrops(): Promise<void> {
    for (const l of this.plan.links) {
      await this.dropShare(l.name, 0);
      await this.blockUdp(l.name, false);
    }
  }

  /** Remove everything; safe to call more than once and after a failed create(). */
  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      // Children are found through their parent, so before it dies (they are reparented then).
      // teardown() sweeps the namespaces too, but from a record that never knew these pids.
      const families = [...this.forking]
        .map((pid) => this.tracked.get(pid))
        .filter((ref): ref is ProcRef => ref !== undefined && isAlive(ref))
        .flatMap((ref) => [ref, ...childrenOf(ref.pid).map(refOf)])
        .filter((ref) => ref.startTime !== undefined); // a child that exited as we looked
      await stopAll(families, 500);
      const problems = await teardown(this.record());
      if (problems.length > 0) throw new Error(`lab ${this.runId} teardown: ${problems.join('; ')}`);
    })();
    return this.destroying;
  }
}

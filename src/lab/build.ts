// The steps that bring a lab up, in order: names for every namespace, then
// the network and the files (at the same time), then one sshd per server,
// each waited for from the neighbour that reaches it. Kept apart from the Lab
// class so that the class reads as its API; the Lab hands in what it owns.

import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { bridgeArgv, brokerDir, brokerLogPath, brokerSocketPath, waitForBridge } from './broker.js';
import { writeLabFiles, type LabFilePaths } from './lab-files.js';
import {
  checkLabMounts,
  hideMounts,
  privateArgv,
  sshdArgv,
  writeLabMounts,
  type PrivateMount,
} from './mounts.js';
import { renderHostsFile, writeEtcNetns } from './names.js';
import { buildNetwork } from './network.js';
import { isAlive, refOf, type RunResult } from './proc.js';
import type { SshdFiles } from './sshd.js';
import type { HostName, TopologyPlan } from './topology.js';
import type { ExecOptions, LabHost, LabMount } from './types.js';
import { makeBusyboxHost, makeDropbearHost, type BusyboxHost } from './userlands.js';
import { writeClientUserFiles, type ClientUserFiles, type LabUser } from './users.js';

export interface BuildContext {
  runId: string;
  dir: string;
  plan: TopologyPlan;
  paths: LabFilePaths;
  kbdInteractive: readonly HostName[];
  sshClient: 'ssh2' | 'openssh';
  hide: Partial<Record<HostName, string[]>>;
  /** Per host, lines first in its sshd_config (LabOptions.sshdConfig). */
  sshdConfig?: Partial<Record<HostName, string[]>>;
  /** Per host, lab files over system paths (LabOptions.mounts). */
  mounts?: Partial<Record<HostName, LabMount[]>>;
  /** Hosts reached through a broker bridge as well (LabOptions.broker). */
  broker?: readonly HostName[];
  /** Hosts whose sessions see busybox only (LabOptions.busybox). */
  busybox?: readonly HostName[];
  /** Hosts that run Dropbear instead of sshd (LabOptions.dropbear). */
  dropbear?: readonly HostName[];
  otpCode: string;
  clientUser: { user: LabUser; files: ClientUserFiles } | undefined;
  host(name: HostName): LabHost;
  spawn(host: HostName, argv: readonly string[], opts: { logFile?: string; forks?: boolean }): number;
  exec(host: HostName, argv: readonly string[], opts?: ExecOptions): Promise<RunResult>;
  /** Told the pid of each host's ssh server listener (sshd or Dropbear) once it is up. */
  onServer(host: HostName, pid: number): void;
}

/** Checks options against the plan before anything is created. */
export function checkOptions(
  ctx: Pick<
    BuildContext,
    'plan' | 'kbdInteractive' | 'hide' | 'sshdConfig' | 'mounts' | 'broker' | 'busybox' | 'dropbear'
  >,
): void {
  const servers = new Set(ctx.plan.hosts.filter((h) => h.runsSshd).map((h) => h.name));
  for (const h of ctx.kbdInteractive) {
    if (!servers.has(h)) throw new Error(`kbdInteractive: "${h}" is not a host with sshd in this lab`);
  }
  for (const [h, paths] of Object.entries(ctx.hide)) {
    if (!servers.has(h as HostName)) throw new Error(`hide: "${h}" is not a host with sshd in this lab`);
    hideMounts(paths); // throws for a path that is not absolute or does not exist
  }
  for (const [h, lines] of Object.entries(ctx.sshdConfig ?? {})) {
    if (!servers.has(h as HostName))
      throw new Error(`sshdConfig: "${h}" is not a host with sshd in this lab`);
    for (const l of lines) {
      if (/[\r\n]/.test(l) || /^\s*match\b/i.test(l))
        throw new Error(`sshdConfig: "${l}" must be one line and not a Match block`);
    }
  }
  for (const [h, mounts] of Object.entries(ctx.mounts ?? {})) {
    if (!servers.has(h as HostName)) throw new Error(`mounts: "${h}" is not a host with sshd in this lab`);
    checkLabMounts(mounts);
  }
  for (const h of ctx.broker ?? []) {
    if (!servers.has(h)) throw new Error(`broker: "${h}" is not a host with sshd in this lab`);
  }
  if (new Set(ctx.broker).size !== (ctx.broker ?? []).length)
    throw new Error('broker: a host is named twice');
  for (const h of ctx.busybox ?? []) {
    if (!servers.has(h)) throw new Error(`busybox: "${h}" is not a host with sshd in this lab`);
  }
  for (const h of ctx.dropbear ?? []) {
    if (!servers.has(h)) throw new Error(`dropbear: "${h}" is not a host with sshd in this lab`);
    // Dropbear has no PAM prompt, no sshd_config and no host certificate to offer.
    const clash = [
      ctx.kbdInteractive.includes(h) && 'kbdInteractive',
      ctx.sshdConfig?.[h] && 'sshdConfig',
      ctx.broker?.includes(h) && 'broker',
    ].filter(Boolean);
    if (clash.length > 0) throw new Error(`dropbear: "${h}" cannot also have ${clash.join(', ')}`);
  }
}

/**
 * Every namespace resolves every lab name. Rewritten in place when an address
 * changes (roam), so running processes see it too.
 */
export function writeNames(plan: TopologyPlan, host: (name: HostName) => LabHost, runId: string): void {
  const entries = plan.hosts.map((h) => ({ address: host(h.name).sshAddress, name: host(h.name).dnsName }));
  for (const h of plan.hosts) {
    writeEtcNetns(host(h.name).ns, renderHostsFile(`moshctl lab ${runId}: ${h.name}`, entries));
  }
}

export async function buildLab(ctx: BuildContext): Promise<void> {
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  // Before any process starts in a namespace: `ip netns exec` mounts what is
  // there when it runs, and a process started earlier would keep the machine's files.
  writeNames(ctx.plan, (h) => ctx.host(h), ctx.runId);
  const nsOf = (h: HostName): string => ctx.host(h).ns;
  const servers = ctx.plan.hosts.filter((h) => h.runsSshd);
  const busybox = new Map<HostName, BusyboxHost>(
    (ctx.busybox ?? []).map((h) => [h, makeBusyboxHost(ctx.dir, h)]),
  );
  // Keys and files are made while the kernel brings the links up; both are
  // awaited before any failure is reported, so destroy() never races a half-run step.
  const [network, written] = await Promise.allSettled([
    buildNetwork(ctx.plan, nsOf),
    writeLabFiles(ctx.paths, {
      dir: ctx.dir,
      runId: ctx.runId,
      servers,
      addressesOf: (h) => ctx.host(h).addresses,
      kbdInteractive: ctx.kbdInteractive,
      sshClient: ctx.sshClient,
      otpCode: ctx.otpCode,
      ...(ctx.sshdConfig ? { sshdConfig: ctx.sshdConfig } : {}),
      ...(ctx.broker ? { broker: ctx.broker } : {}),
      sessionPath: Object.fromEntries([...busybox].map(([h, b]) => [h, b.binDir])),
    }),
  ]);
  if (network.status === 'rejected') throw network.reason;
  if (written.status === 'rejected') throw written.reason;
  const files = written.value;
  if (ctx.clientUser) writeClientUserFiles(ctx.clientUser.files, ctx.clientUser.user, ctx.paths);
  await Promise.all(
    servers.map(async (h, i) => {
      const f = files.sshd[i] as SshdFiles;
      const mounts: PrivateMount[] = [
        ...hideMounts(ctx.hide[h.name] ?? []),
        ...writeLabMounts(ctx.dir, h.name, ctx.mounts?.[h.name] ?? []),
      ];
      if (ctx.kbdInteractive.includes(h.name) && files.pamFile) {
        mounts.push({ source: files.pamFile, target: '/etc/pam.d/sshd' });
      }
      mounts.push(...(busybox.get(h.name)?.mounts ?? []));
      let argv = sshdArgv(f.config, mounts);
      if (ctx.dropbear?.includes(h.name)) {
        const d = await makeDropbearHost(
          ctx.dir,
          h.name,
          f.hostKey,
          files.authorizedKeys,
          ctx.host(h.name).addresses,
        );
        argv = privateArgv(d.argv, [...mounts, ...d.mounts]);
      }
      const pid = ctx.spawn(h.name, argv, { logFile: f.log });
      await waitForSshd(ctx, h.name, h.probeFrom ?? h.name, pid, f.log);
      ctx.onServer(h.name, pid);
      // After sshd is up, so the first caller through the bridge finds it listening.
      if (ctx.broker?.includes(h.name)) await startBridge(ctx, h.name);
    }),
  );
}

/** The broker bridge of one host (broker.ts): in its namespace, tracked with its forked children. */
async function startBridge(ctx: BuildContext, host: HostName): Promise<void> {
  // Traversable by the client user, whose ssh runs the ProxyCommand; the socket itself is 0666.
  mkdirSync(brokerDir(ctx.dir), { recursive: true, mode: 0o711 });
  chmodSync(brokerDir(ctx.dir), 0o711);
  const socket = brokerSocketPath(ctx.dir, host);
  const log = brokerLogPath(ctx.dir, host);
  const pid = ctx.spawn(host, bridgeArgv(socket), { logFile: log, forks: true });
  await waitForBridge(socket, pid, log);
}

/** Poll from the neighbour that reaches it, so the link is proven as well as the listener. */
async function waitForSshd(
  ctx: BuildContext,
  host: HostName,
  from: HostName,
  pid: number,
  log: string,
): Promise<void> {
  const ref = refOf(pid);
  const address = ctx.host(host).sshAddress;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (!isAlive(ref)) {
      throw new Error(`sshd on ${host} exited: ${readFileSync(log, 'utf8').trim().slice(-800)}`);
    }
    const r = await ctx.exec(from, ['nc', '-z', '-w', '1', address, '22'], { timeoutMs: 3000 });
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${host} (${address}) not reachable from ${from}`);
    await sleep(50);
  }
}

// What labs left behind: used by the last e2e test file and `lab status`.
// A lab whose owner is still alive (another test run on the same machine, or
// a lab left up on purpose) is not a leftover; everything else is.

import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { ETC_NETNS, listEtcNetns } from './names.js';
import { isAlive, processStartTime } from './proc.js';
import {
  DEFAULT_PREFIX,
  labNamespacePattern,
  listNamespaces,
  readRecords,
  type LabRecord,
} from './registry.js';

export interface StrayProcess {
  pid: number;
  comm: string;
  /** The named namespace it runs in, or "(deleted namespace)". */
  ns: string;
}

export interface Leftovers {
  /**
   * Lab-prefixed namespaces that no live lab owns, and (as full paths, also
   * listed in etcNetns) their /etc/netns dirs: one list covers both, so a check
   * that this is empty catches either.
   */
  namespaces: string[];
  /** /etc/netns/<prefix>-* dirs (the lab's hosts files) that no live lab owns. */
  etcNetns: string[];
  /** Registry records of labs whose owner is gone (or is this very process). */
  records: string[];
  /** Still-running pids recorded by those labs. */
  pids: number[];
  /** sshd / Dropbear / mosh / tmux / screen / relay / broker processes in a leftover namespace or in a namespace already deleted. */
  processes: StrayProcess[];
  /** Run ids of labs still owned by a live process, which were left alone. */
  inUse: string[];
}

// tmux and screen: what mosh.session keeps running on a target after mosh-server ends.
const WATCHED = new Set(['sshd', 'dropbear', 'mosh-server', 'mosh-client', 'tmux: server', 'screen']);
/**
 * moshctl's relays run as python3, socat or nc: known by their command line, not their name.
 * So are the lab's broker bridges and the ProxyCommands that use them (a socket in <lab dir>/broker/).
 */
const RELAY = /--idle-timeout|moshctl-relay|UDP4-LISTEN|\/broker\/[a-z0-9]+\.sock\b/;

function isWatched(pid: number, comm: string): boolean {
  if (WATCHED.has(comm)) return true;
  try {
    return RELAY.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
  } catch {
    return false;
  }
}

function netnsId(path: string): string | undefined {
  try {
    return readlinkSync(path); // "net:[4026531840]"
  } catch {
    return undefined;
  }
}

function inUseBySomeoneElse(rec: LabRecord): boolean {
  if (rec.owner === null) return true;
  return rec.owner.pid !== process.pid && isAlive(rec.owner);
}

export async function findLeftovers(prefix = DEFAULT_PREFIX): Promise<Leftovers> {
  const records = readRecords();
  const live = records.filter(inUseBySomeoneElse);
  const dead = records.filter((r) => !inUseBySomeoneElse(r));
  const liveNs = new Set(live.flatMap((r) => r.namespaces));
  const pattern = labNamespacePattern(prefix);
  const allNs = await listNamespaces();
  const namespaces = allNs.filter((ns) => pattern.test(ns) && !liveNs.has(ns));
  const etcNetns = listEtcNetns()
    .filter((ns) => pattern.test(ns) && !liveNs.has(ns))
    .map((ns) => `${ETC_NETNS}/${ns}`);

  // Map namespace identities (nsfs inode) to names, to place each process.
  const nameOf = new Map<string, string>();
  for (const ns of allNs) {
    try {
      nameOf.set(`net:[${statSync(`/run/netns/${ns}`).ino}]`, ns);
    } catch {
      // Deleted while we looked.
    }
  }
  const rootNs = netnsId('/proc/1/ns/net') ?? netnsId('/proc/self/ns/net');
  const ownNs = netnsId('/proc/self/ns/net');
  const leftoverNs = new Set(namespaces);
  const processes: StrayProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    let comm: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    // Zombies are dead already (this machine's pid 1 may never reap them).
    if (!isWatched(pid, comm) || processStartTime(pid) === undefined) continue;
    const id = netnsId(`/proc/${pid}/ns/net`);
    if (id === undefined || id === rootNs || id === ownNs) continue;
    const name = nameOf.get(id);
    // A process in a namespace nobody has a name for outlived `ip netns del`.
    if (name === undefined) processes.push({ pid, comm, ns: '(deleted namespace)' });
    else if (leftoverNs.has(name)) processes.push({ pid, comm, ns: name });
  }
  const pids = dead.flatMap((r) => r.pids.filter(isAlive).map((p) => p.pid));
  return {
    namespaces: [...namespaces, ...etcNetns],
    etcNetns,
    records: dead.map((r) => r.runId),
    pids,
    processes,
    inUse: live.map((r) => r.runId),
  };
}

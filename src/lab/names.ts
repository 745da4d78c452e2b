// Host names for the lab. `ip netns exec NS` bind-mounts every file of
// /etc/netns/NS/ over the file of the same name in /etc, for the command it
// runs and everything that command starts (sshd and its sessions too). So a
// hosts file there gives each namespace the lab's names, without touching the
// machine's own /etc/hosts and without any DNS server.
//
// The dirs live outside the lab dir, so they are named after the namespaces
// (which the registry records before anything is created) and removed with
// them; registry.ts also removes any whose namespace nobody claims.

import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ETC_NETNS = '/etc/netns';

/** The per-namespace /etc overlay dir `ip netns exec` reads. */
export function etcNetnsDir(ns: string): string {
  // A bad name could point at /etc/netns itself or outside it, and this path is rm -rf'd.
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(ns)) throw new Error(`bad namespace name "${ns}"`);
  return join(ETC_NETNS, ns);
}

export function renderHostsFile(title: string, entries: { address: string; name: string }[]): string {
  return [
    `# ${title}`,
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    ...entries.map((e) => `${e.address}\t${e.name}`),
    '',
  ].join('\n');
}

// With no resolver reachable, a lookup of a name outside the lab would wait for
// timeouts toward the machine's nameserver (dropped at the bastion, which does
// not forward); a nameserver on the namespace's own loopback refuses at once.
const RESOLV_CONF = [
  '# moshctl lab: names come from /etc/hosts; no DNS inside a lab namespace',
  'nameserver 127.0.0.1',
  'options attempts:1 timeout:1',
  '',
].join('\n');

/**
 * Write (or rewrite in place) a namespace's hosts and resolv.conf. Readable by
 * everyone: sessions of non-root users resolve names too. Rewriting keeps the
 * inode, so processes already running (whose /etc/hosts is a bind mount of
 * this file) see the change.
 */
export function writeEtcNetns(ns: string, hostsText: string): void {
  const dir = etcNetnsDir(ns);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(join(dir, 'hosts'), hostsText, { mode: 0o644 });
  writeFileSync(join(dir, 'resolv.conf'), RESOLV_CONF, { mode: 0o644 });
}

export function removeEtcNetns(ns: string): void {
  rmSync(etcNetnsDir(ns), { recursive: true, force: true });
}

/** Names of the dirs under /etc/netns (each named after a namespace). */
export function listEtcNetns(): string[] {
  try {
    return readdirSync(ETC_NETNS);
  } catch {
    return [];
  }
}

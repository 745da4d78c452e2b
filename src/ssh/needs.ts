// What a host needs that ssh2 cannot do, read from its files: its known_hosts
// (a host known only through @cert-authority) and its keys (a FIDO `sk-` key),
// besides what its settings say (ssh2Limit). config/client-choice.ts asks this
// to pick the user's own ssh for such a route; a file that cannot be read is
// left to the connect step, which names it.
import { readFile } from 'node:fs/promises';
import type { SshHost } from '../config/types.js';
import type { KnownHostsText } from './known-hosts.js';
import { isSecurityKey, privateKeyType, securityKeyLimit, ssh2Limit, type Ssh2Limit } from './limits.js';

export async function ssh2Needs(
  host: SshHost,
  read: (path: string) => Promise<Buffer | undefined> = readQuietly,
): Promise<Ssh2Limit | undefined> {
  const known = await Promise.all(
    [...host.known_hosts, ...host.global_known_hosts].map(async (file) => {
      const data = await read(file);
      return data ? { file, text: data.toString('utf8') } : undefined;
    }),
  );
  const limit = ssh2Limit(
    host,
    known.filter((k): k is KnownHostsText => k !== undefined),
  );
  if (limit) return limit;
  const keys = await Promise.all(host.identity_files.map(async (path) => ({ path, data: await read(path) })));
  const sk = keys.find((k) => k.data && isSecurityKey(privateKeyType(k.data)));
  return sk ? securityKeyLimit(sk.path) : undefined;
}

async function readQuietly(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

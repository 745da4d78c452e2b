// The host names offered where a command takes NAME (`up`, `plan`, `down`,
// `doctor`): moshproxy.yaml's hosts, then the single-host names of ssh_config. Called on every TAB, so it reads
// as little as it can and never fails: a broken or missing file only means
// fewer names (the command itself will say what is wrong when it is run).
import { join } from 'node:path';
import { discoverFiles } from '../../config/discover.js';
import { mergeSources } from '../../config/merge.js';
import { readSource } from '../../config/read.js';
import type { Source } from '../../config/source.js';
import { localUser } from '../../config/ssh-config.js';
import type { Io } from '../io.js';
import { sshConfigHosts } from './ssh-hosts.js';

/**
 * Names a shell can take as one word without quoting, and ssh as a host: the
 * shape src/config/hosts.ts accepts. Anything else (a `$(…)` in a hostile
 * ssh_config, say) is left out rather than handed to a shell's completion code.
 */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9._:%-]{0,252}$/;

export function completionHosts(files: readonly string[], io: Pick<Io, 'env' | 'cwd'>): string[] {
  const names = [...configHosts(files, io), ...sshHosts(io.env)];
  return [...new Set(names.filter((n) => PLAIN_NAME.test(n)))];
}

/**
 * moshproxy.yaml's host names, found as every command finds the files. Only
 * read and merged, not checked: a file with an unrelated mistake still
 * completes its names, and the schema check is the slow part of loading.
 */
function configHosts(files: readonly string[], io: Pick<Io, 'env' | 'cwd'>): string[] {
  let paths: string[];
  try {
    paths = discoverFiles({ files, env: io.env, cwd: io.cwd });
  } catch {
    return [];
  }
  const sources: Source[] = [];
  for (const file of paths) {
    try {
      const source = readSource(file, io.env);
      if (source.data !== undefined) sources.push(source);
    } catch {
      // unreadable or not text: the other files may still name hosts
    }
  }
  const { data } = mergeSources(sources);
  const hosts = isMap(data) ? data.hosts : undefined;
  return isMap(hosts) ? Object.keys(hosts) : [];
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** ssh_config's hosts: MOSHCTL_SSH_CONFIG as `ssh -F` (as src/config/ssh-g.ts), else ~/.ssh/config. */
function sshHosts(env: Io['env']): string[] {
  try {
    // $HOME, not the passwd home ssh itself uses: it is the ~ the person at the shell sees.
    const home = env.HOME || localUser().home;
    return sshConfigHosts(env.MOSHCTL_SSH_CONFIG || join(home, '.ssh', 'config'), home);
  } catch {
    return [];
  }
}

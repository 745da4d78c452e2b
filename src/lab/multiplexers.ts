// tmux and screen on lab hosts (moshctl's mosh.session). Lab hosts share the
// machine's /tmp and /run, where both keep their sockets by default, so a
// session started on the target could meet a server of the machine itself or
// of another lab under the same name. Each host's sshd therefore points its
// sessions at the host's own socket folders (sshd.ts, SetEnv), and a test
// finds the servers left on a host by pid, in that host's namespace.

import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { refOf, stopAll } from './proc.js';
import type { HostName } from './topology.js';

export interface SocketDirs {
  /** TMUX_TMPDIR for every user (tmux makes its own 0700 tmux-UID inside). */
  tmux: string;
  /** SCREENDIR for root: screen wants a folder only its user may enter. */
  screenRoot: string;
}

/** Makes `host`'s socket folders under the lab dir (removed with it). */
export function makeSocketDirs(labDir: string, host: string): SocketDirs {
  const base = join(labDir, 'sockets', host);
  const dirs = { tmux: join(base, 'tmux'), screenRoot: join(base, 'screen-root') };
  mkdirSync(dirs.tmux, { recursive: true });
  // Like /tmp: every login user makes its own folder here; mkdir's mode is cut by the umask.
  chmodSync(join(labDir, 'sockets'), 0o755);
  chmodSync(base, 0o755);
  chmodSync(dirs.tmux, 0o1777);
  mkdirSync(dirs.screenRoot, { mode: 0o700 });
  chmodSync(dirs.screenRoot, 0o700);
  return dirs;
}

export interface MultiplexerServer {
  pid: number;
  program: 'tmux' | 'screen';
  cmdline: string;
}

/** The lab parts these helpers use (a structural type avoids an import cycle). */
interface PidsLab {
  pidsIn(host: HostName): Promise<number[]>;
}

/**
 * tmux and screen servers running in `host`'s namespace, found by pid: a
 * tmux server names itself "tmux: server" (its comm), a screen server's
 * command line starts with "SCREEN". Clients are left out: they end with
 * their terminal, a server does not.
 */
export async function multiplexerServers(lab: PidsLab, host: HostName): Promise<MultiplexerServer[]> {
  const found: MultiplexerServer[] = [];
  for (const pid of await lab.pidsIn(host)) {
    let comm: string;
    let cmdline: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    if (refOf(pid).startTime === undefined) continue; // a zombie is dead already
    if (comm === 'tmux: server') found.push({ pid, program: 'tmux', cmdline });
    else if (cmdline.startsWith('SCREEN ')) found.push({ pid, program: 'screen', cmdline });
  }
  return found;
}

/** Stops every tmux and screen server on `host` by pid (TERM, then KILL); returns those that were running. */
export async function stopMultiplexerServers(lab: PidsLab, host: HostName): Promise<MultiplexerServer[]> {
  const servers = await multiplexerServers(lab, host);
  const left = await stopAll(servers.map((s) => refOf(s.pid)));
  if (left.length > 0)
    throw new Error(`tmux/screen servers on ${host} survived SIGKILL: ${left.map((r) => r.pid).join(', ')}`);
  return servers;
}

// Where a forwarded ssh agent shows on a lab host: the unix sockets sshd
// binds for it (/tmp/ssh-XXXX/agent.PID) and the processes whose environment
// names one (SSH_AUTH_SOCK). Lab hosts share one file system, so /tmp alone
// cannot say which host a socket belongs to: a unix socket is counted in the
// network namespace of the process that bound it, and /proc/net/unix read
// inside a namespace lists that namespace's, so that is what is read; a
// socket file left behind is tied to its host by the pid in its name.

import { readdirSync, readFileSync } from 'node:fs';
import type { RunResult } from './proc.js';
import type { HostName } from './topology.js';
import type { ExecOptions } from './types.js';

/** sshd's name for a forwarded agent (session.c: `/tmp/ssh-XXXXXXXXXX/agent.<sshd pid>`). */
const SSHD_AGENT_SOCKET = /^\/tmp\/ssh-[A-Za-z0-9]+\/agent\.(\d+)$/;

/** Paths of the bound unix sockets in a /proc/net/unix listing (abstract and unnamed ones left out). */
export function unixSocketPaths(procNetUnix: string): string[] {
  const paths = new Set<string>();
  for (const line of procNetUnix.split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode Path: the path is the 8th field, and may hold spaces.
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const path = fields.slice(7).join(' ');
    if (path.startsWith('/')) paths.add(path);
  }
  return [...paths];
}

/** A socket path that sshd makes for a forwarded agent, or one that is named like an agent's. */
export function isAgentSocketPath(path: string): boolean {
  return SSHD_AGENT_SOCKET.test(path) || /(^|\/)agent[^/]*$/.test(path);
}

/** The sshd pid in a `/tmp/ssh-*\/agent.PID` path, or undefined. */
export function agentSocketPid(path: string): number | undefined {
  const m = SSHD_AGENT_SOCKET.exec(path);
  return m?.[1] ? Number(m[1]) : undefined;
}

/** SSH_AUTH_SOCK in a /proc/PID/environ block (NUL-separated), or undefined. */
export function authSockOf(environ: Buffer | string): string | undefined {
  const text = typeof environ === 'string' ? environ : environ.toString('latin1');
  for (const entry of text.split('\0')) {
    if (entry.startsWith('SSH_AUTH_SOCK=')) return entry.slice('SSH_AUTH_SOCK='.length);
  }
  return undefined;
}

export interface AgentExposure {
  /** Agent sockets bound in the host's namespace, and /tmp/ssh-*\/agent.PID files whose PID runs there. */
  sockets: string[];
  /** Processes there whose environment has SSH_AUTH_SOCK, as "pid cmdline SSH_AUTH_SOCK=…". */
  processes: string[];
}

/** The parts of a Lab the scan uses. */
export interface ExposureLab {
  exec(host: HostName, argv: readonly string[], opts?: ExecOptions): Promise<RunResult>;
  pidsIn(host: HostName): Promise<number[]>;
}

function read(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined; // the process ended meanwhile
  }
}

/** `/tmp/ssh-*\/agent.*` files on this machine (all hosts' alike). */
export function sshdAgentFiles(tmp = '/tmp'): string[] {
  const found: string[] = [];
  let dirs: string[];
  try {
    dirs = readdirSync(tmp).filter((d) => d.startsWith('ssh-'));
  } catch {
    return [];
  }
  for (const d of dirs) {
    try {
      for (const f of readdirSync(`${tmp}/${d}`)) if (f.startsWith('agent.')) found.push(`${tmp}/${d}/${f}`);
    } catch {
      // not ours to read, or gone
    }
  }
  return found;
}

/**
 * Every sign of a forwarded agent on `host`: sockets and processes. The
 * lab's own servers started with this process's environment carry its
 * SSH_AUTH_SOCK, if it has one: processes holding exactly `inherited`
 * (default: this process's SSH_AUTH_SOCK) are not counted.
 */
export async function agentExposure(
  lab: ExposureLab,
  host: HostName,
  inherited: string | undefined = process.env.SSH_AUTH_SOCK,
): Promise<AgentExposure> {
  const r = await lab.exec(host, ['cat', '/proc/net/unix']);
  if (r.code !== 0) throw new Error(`cat /proc/net/unix on ${host}: ${r.stderr.trim()}`);
  const pids = await lab.pidsIn(host);
  const onHost = new Set(pids);
  const sockets = new Set(unixSocketPaths(r.stdout).filter(isAgentSocketPath));
  for (const f of sshdAgentFiles()) {
    const pid = agentSocketPid(f);
    if (pid !== undefined && onHost.has(pid)) sockets.add(f);
  }
  const processes: string[] = [];
  for (const pid of pids) {
    const environ = read(`/proc/${pid}/environ`);
    const sock = environ && authSockOf(environ);
    if (!sock || sock === inherited) continue;
    const cmd = (read(`/proc/${pid}/cmdline`) ?? Buffer.alloc(0))
      .toString('utf8')
      .replaceAll('\0', ' ')
      .trim();
    processes.push(`${pid} ${cmd} SSH_AUTH_SOCK=${sock}`);
  }
  return { sockets: [...sockets].sort(), processes };
}

// `moshctl status [--json]`: every session of this user, with whether its
// server and relays still run (asked on the hosts, by pid and command line).
import { ExitCode } from '../../errors.js';
import { ownerAlive } from '../../state/owner.js';
import type { SessionRecord } from '../../state/record.js';
import { SessionStore, stateDir } from '../../state/store.js';
import { EnvError } from '../../errors.js';
import { SshRunner, sshConfigOption } from '../../execute/ssh-runner.js';
import { terminalPrompter } from '../prompt.js';
import { aliveCommand, parseAlive } from '../../remote/processes.js';
import { parseRelayAlive, relayAliveCommand } from '../../relay/commands.js';
import type { CommandContext } from '../main.js';

type Liveness = 'alive' | 'dead' | 'unknown';

interface SessionStatus {
  id: string;
  name: string;
  route: string[];
  createdAt: string;
  ageSeconds: number;
  /** Whether the `up` process (and so mosh-client) still runs on this machine; `elsewhere` after `up --no-connect`. */
  client: Liveness | 'elsewhere';
  server: { host: string; pid: number; port: number; state: Liveness } | null;
  relays: { host: string; pid: number; port: number; runtime: string; restarts: number; state: Liveness }[];
  /** Why a host could not be asked, by host. */
  unreachable: Record<string, string>;
}

export async function status(ctx: CommandContext): Promise<number> {
  const store = new SessionStore(stateDir(ctx.io.env));
  const { records, damaged } = store.list();
  for (const d of damaged) ctx.io.stderr(`moshctl: ignoring unreadable state file ${d}\n`);
  const sessions: SessionStatus[] = [];
  for (const r of records) sessions.push(await check(r, ctx.io.env));
  if (ctx.values.json) {
    ctx.io.stdout(`${JSON.stringify({ version: 1, sessions }, null, 2)}\n`);
    return ExitCode.ok;
  }
  if (sessions.length === 0) {
    ctx.io.stdout('no sessions\n');
    return ExitCode.ok;
  }
  for (const s of sessions) {
    ctx.io.stdout(`${s.name}  ${s.id}  up ${age(s.ageSeconds)}  client ${s.client}\n`);
    ctx.io.stdout(`  route   local → ${s.route.join(' → ')}\n`);
    for (const r of s.relays)
      ctx.io.stdout(
        `  relay   ${r.host} UDP ${r.port} (${r.runtime}, pid ${r.pid}${r.restarts > 0 ? `, restarted ${r.restarts}×` : ''}): ${r.state}\n`,
      );
    if (s.server)
      ctx.io.stdout(
        `  server  ${s.server.host} UDP ${s.server.port} (pid ${s.server.pid}): ${s.server.state}\n`,
      );
    for (const [host, why] of Object.entries(s.unreachable))
      ctx.io.stdout(`  ${host} not reachable: ${why}\n`);
  }
  return ExitCode.ok;
}

async function check(record: SessionRecord, env: CommandContext['io']['env']): Promise<SessionStatus> {
  // Each process with the command that asks whether it still runs and how to read the answer.
  const processes = [
    ...record.relays.map((r) => ({
      host: r.host,
      pid: r.pid,
      ask: relayAliveCommand(r.pid),
      read: parseRelayAlive,
    })),
    ...(record.server
      ? [
          {
            host: record.server.host,
            pid: record.server.pid,
            ask: aliveCommand([{ pid: record.server.pid, marker: 'mosh-server' }]),
            read: (out: string) => parseAlive(out).get(record.server?.pid ?? 0),
          },
        ]
      : []),
  ];
  const states = new Map<number, Liveness>();
  const unreachable: Record<string, string> = {};
  // The runner reaches each host as far as the route allows: with the target
  // gone, the relays on the bastions are still checked.
  const runner = new SshRunner(record.route, { ...sshConfigOption(env), prompter: terminalPrompter() });
  try {
    for (const p of processes) {
      if (unreachable[p.host]) continue;
      try {
        const alive = p.read((await runner.ask(p.host, p.ask)).stdout);
        if (alive !== undefined) states.set(p.pid, alive ? 'alive' : 'dead');
      } catch (e) {
        const host = e instanceof EnvError ? (e.where.host ?? p.host) : p.host;
        unreachable[host] = e instanceof Error ? e.message : String(e);
      }
    }
  } finally {
    await runner.close();
  }
  const state = (pid: number): Liveness => states.get(pid) ?? 'unknown';
  return {
    id: record.id,
    name: record.name,
    route: record.route.map((h) => h.name),
    createdAt: record.createdAt,
    ageSeconds: Math.max(0, Math.round((Date.now() - Date.parse(record.createdAt)) / 1000)),
    client: record.detached ? 'elsewhere' : ownerAlive(record) ? 'alive' : 'dead',
    server: record.server ? { ...record.server, state: state(record.server.pid) } : null,
    relays: record.relays.map((r) => ({ ...r, restarts: r.restarts ?? 0, state: state(r.pid) })),
    unreachable,
  };
}

function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

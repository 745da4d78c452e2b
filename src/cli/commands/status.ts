// `moshctl status [--json]`: every session of this user, with whether its
// server and relays still run (asked on the hosts, by pid and command line),
// whether its `up` process does (here; see state/owner.ts), or the cleanup it
// left when it stopped waiting (cli/cleanup.ts), and every state file that is
// not a usable record, with why.
import { ExitCode } from '../../errors.js';
import { cleanupOwner, owner, type Owner } from '../../state/owner.js';
import type { SessionRecord } from '../../state/record.js';
import type { ForwardStatus } from '../../forward/types.js';
import type { Liveness } from '../../remote/processes.js';
import { describeUnreadable, SessionStore, stateDir } from '../../state/store.js';
import { EnvError } from '../../errors.js';
import { SshRunner, sshConfigOption } from '../../execute/ssh-runner.js';
import { debugChainOption } from '../../transport/debug-chain.js';
import { terminalPrompter } from '../prompt.js';
import type { CommandContext } from '../context.js';

const CLIENT = {
  alive: 'alive',
  gone: 'crashed',
  detached: 'elsewhere',
  'other-machine': 'other-machine',
} as const satisfies Record<Owner['kind'], SessionStatus['client']>;

interface SessionStatus {
  id: string;
  name: string;
  route: string[];
  createdAt: string;
  ageSeconds: number;
  /**
   * Whether the `up` process (and so mosh-client) still runs: `crashed` when it is gone from this
   * machine, `elsewhere` after `up --no-connect`, `other-machine` when `machine` is not this one,
   * `cleaning-up` while the cleanup it left (it stopped waiting for its teardown) runs.
   */
  client: 'alive' | 'crashed' | 'elsewhere' | 'other-machine' | 'cleaning-up';
  /** The detached `moshctl down` an `up` left to finish its teardown, and its log. */
  cleanup?: { pid: number | null; since: string; running: boolean; log: string };
  /** The host name of the machine `up` ran on. */
  machine: string;
  /** With `crashed`: how it is known that the `up` process is gone. */
  crashed?: string;
  server: { host: string; pid: number; port: number; state: Liveness } | null;
  /** While mosh-server was being started (its pid not yet known): the shell starting it. */
  keeper?: { host: string; pid: number; state: Liveness };
  relays: { host: string; pid: number; port: number; runtime: string; restarts: number; state: Liveness }[];
  /** Why a host could not be asked, by host. */
  unreachable: Record<string, string>;
  /** While its `up` runs: the kept ssh chain, each port forward and the forwarded agent, as `up` last wrote them. */
  chain?: NonNullable<SessionRecord['chain']>;
  /** Transports tcp and auto: how mosh's datagrams travel now, and how often that changed. */
  path?: NonNullable<SessionRecord['path']>;
  forwards?: ForwardStatus[];
  agent?: NonNullable<SessionRecord['agent']>;
}

export async function status(ctx: CommandContext): Promise<number> {
  const store = new SessionStore(stateDir(ctx.io.env));
  const { records, unreadable } = store.list();
  const sessions: SessionStatus[] = [];
  // Each check opens its own chain: several at once, the order kept (50 sessions took 25 s one by one).
  sessions.push(...(await inBatches(records, STATUS_CONCURRENCY, (r) => check(r, ctx.io.env, store))));
  if (ctx.values.json) {
    // `unreadable` only when there is one, so the output of a clean state folder stays as it was.
    const bad = unreadable.map(({ file, why, newer }) => ({ file, why, newer }));
    ctx.io.stdout(
      `${JSON.stringify({ version: 1, sessions, ...(bad.length > 0 ? { unreadable: bad } : {}) }, null, 2)}\n`,
    );
    return ExitCode.ok;
  }
  if (sessions.length === 0 && unreadable.length === 0) {
    ctx.io.stdout('no sessions\n');
    return ExitCode.ok;
  }
  for (const s of sessions) {
    const client =
      s.client === 'other-machine'
        ? `on ${s.machine}`
        : s.client === 'cleaning-up'
          ? 'cleaning up'
          : s.client;
    ctx.io.stdout(`${s.name}  ${s.id}  up ${age(s.ageSeconds)}  client ${client}\n`);
    if (s.cleanup?.running)
      ctx.io.stdout(
        `  cleanup its moshctl up stopped waiting; pid ${s.cleanup.pid ?? '?'} stops what is left, its log: ${s.cleanup.log}\n`,
      );
    else if (s.cleanup) ctx.io.stdout(`  cleanup ended with something left (its log: ${s.cleanup.log})\n`);
    if (s.crashed !== undefined)
      ctx.io.stdout(
        `  crashed its moshctl up is gone: ${s.crashed}; "moshctl down ${s.name}" stops what is left\n`,
      );
    ctx.io.stdout(`  route   local → ${s.route.join(' → ')}\n`);
    for (const r of s.relays)
      ctx.io.stdout(
        `  relay   ${r.host} UDP ${r.port} (${r.runtime}, pid ${r.pid}${r.restarts > 0 ? `, restarted ${r.restarts}×` : ''}): ${r.state}\n`,
      );
    if (s.server)
      ctx.io.stdout(
        `  server  ${s.server.host} UDP ${s.server.port} (pid ${s.server.pid}): ${s.server.state}\n`,
      );
    if (s.keeper)
      ctx.io.stdout(
        `  server  ${s.keeper.host}, being started (its shell, pid ${s.keeper.pid}): ${s.keeper.state}\n`,
      );
    for (const line of liveLines(s)) ctx.io.stdout(`  ${line}\n`);
    for (const [host, why] of Object.entries(s.unreachable))
      ctx.io.stdout(`  ${host} not reachable: ${why}\n`);
  }
  // Never fatal, and not an error of status: `down` says what to do about them.
  for (const u of unreadable) ctx.io.stdout(`unreadable: ${describeUnreadable(u)}\n`);
  return ExitCode.ok;
}

async function check(
  record: SessionRecord,
  env: CommandContext['io']['env'],
  store: SessionStore,
): Promise<SessionStatus> {
  const processes = [
    ...record.relays.map((r) => ({ ...r, kind: 'relay' as const })),
    ...(record.server ? [{ ...record.server, kind: 'mosh-server' as const }] : []),
    ...(record.keeper ? [{ ...record.keeper, kind: 'keeper' as const }] : []),
  ];
  const states = new Map<number, Liveness>();
  const unreachable: Record<string, string> = {};
  // The runner reaches each host as far as the route allows: with the target
  // gone, the relays on the bastions are still checked.
  const runner = new SshRunner(record.route, {
    ...sshConfigOption(env),
    prompter: terminalPrompter(),
    ...debugChainOption(env),
  });
  try {
    for (const p of processes) {
      if (unreachable[p.host]) continue;
      try {
        // unknown: the host could not tell (no /proc and no ps that answers), never "dead".
        const state = await runner.alive(p.host, p.pid, p.kind, p.started);
        if (state !== undefined) states.set(p.pid, state);
      } catch (e) {
        const host = e instanceof EnvError ? (e.where.host ?? p.host) : p.host;
        unreachable[host] = e instanceof Error ? e.message : String(e);
      }
    }
  } finally {
    await runner.close();
  }
  const state = (pid: number): Liveness => states.get(pid) ?? 'unknown';
  const own = owner(record);
  const cleaner = cleanupOwner(record);
  const cleaning = cleaner?.kind === 'alive';
  return {
    id: record.id,
    name: record.name,
    route: record.route.map((h) => h.name),
    createdAt: record.createdAt,
    ageSeconds: Math.max(0, Math.round((Date.now() - Date.parse(record.createdAt)) / 1000)),
    client: cleaning ? 'cleaning-up' : CLIENT[own.kind],
    machine: record.machine,
    ...(record.cleanup
      ? {
          cleanup: {
            pid: record.cleanup.pid ?? null,
            since: record.cleanup.since,
            running: cleaning,
            log: store.logFile(record.id),
          },
        }
      : {}),
    ...(own.kind === 'gone' && !cleaning ? { crashed: own.why } : {}),
    server: record.server ? { ...record.server, state: state(record.server.pid) } : null,
    ...(record.keeper
      ? { keeper: { host: record.keeper.host, pid: record.keeper.pid, state: state(record.keeper.pid) } }
      : {}),
    relays: record.relays.map((r) => ({ ...r, restarts: r.restarts ?? 0, state: state(r.pid) })),
    unreachable,
    // What lives in the `up` process is only true while it runs.
    ...(own.kind === 'alive' && record.chain ? { chain: record.chain } : {}),
    ...(own.kind === 'alive' && record.path ? { path: record.path } : {}),
    ...(own.kind === 'alive' && record.forwards ? { forwards: record.forwards } : {}),
    ...(own.kind === 'alive' && record.agent ? { agent: record.agent } : {}),
  };
}

/** The datagrams' path, the kept chain, each forward and the agent, one line each. */
function liveLines(s: SessionStatus): string[] {
  const lines: string[] = [];
  const p = s.path;
  if (p) {
    const how = p.via === 'udp' ? 'udp through the relays' : 'tcp inside the ssh chain';
    const changed = p.changes > 0 ? `, changed ${p.changes}×` : '';
    const stays = p.via === 'tcp' && p.noReturn ? `; stays on tcp: ${p.noReturn}` : '';
    lines.push(`path    ${how} since ${p.since}${changed}${stays}`);
  }
  const c = s.chain;
  if (c) {
    const back = c.reconnects > 0 ? ` (came back ${c.reconnects}×)` : '';
    lines.push(
      c.up
        ? `chain   up${back}`
        : `chain   down since ${c.since ?? '?'}${back}${c.lastError ? `: ${c.lastError}` : ''}`,
    );
  }
  for (const f of s.forwards ?? []) {
    const state = f.listening
      ? `listening${f.port !== undefined ? ` (port ${f.port})` : ''}`
      : 'not listening';
    const counts = `${f.open} open, ${f.total} in all, ${f.broken} broken, ${f.refused} refused`;
    lines.push(`forward ${f.text}: ${state}; ${counts}${f.lastError ? `; last error: ${f.lastError}` : ''}`);
  }
  const a = s.agent;
  if (a)
    lines.push(
      `agent   ${a.host} ${a.socket}: ${a.up ? 'forwarded' : 'not forwarded now'}${a.lastError && !a.up ? ` (${a.lastError})` : ''}`,
    );
  return lines;
}

function age(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${Math.round(seconds / 3600)}h`;
}

/** Sessions checked at once: each holds an ssh connection per hop while it is checked. */
const STATUS_CONCURRENCY = 8;

/** `f` over `items`, at most `n` at a time; results in the order of `items`. */
async function inBatches<T, R>(items: readonly T[], n: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

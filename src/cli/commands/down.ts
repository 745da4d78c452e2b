// `moshctl down [NAME] [--all] [--force] [--id ID]`: stop sessions from their
// records, from any terminal, after moshctl was killed, when a host is gone,
// and twice in a row. A session another machine runs (a state folder on a
// shared home) is left to that machine unless --force; a state file that
// cannot be read is reported with what to do about it, never acted on.
// `down --id ID` is also what an `up` that stops waiting (a second Ctrl-C)
// leaves running, detached, to finish its teardown (see cli/cleanup.ts).
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { discoverFiles } from '../../config/discover.js';
import { ExitCode, UserError } from '../../errors.js';
import { SshRunner, sshConfigOption } from '../../execute/ssh-runner.js';
import { debugChainOption } from '../../transport/debug-chain.js';
import { terminalPrompter } from '../prompt.js';
import { teardown } from '../../execute/teardown.js';
import { cleanupOwner, owner } from '../../state/owner.js';
import type { SessionRecord } from '../../state/record.js';
import { describeUnreadable, SessionStore, stateDir, type UnreadableRecord } from '../../state/store.js';
import type { CommandContext } from '../context.js';

/** How long the owning `up` process gets to tear down by itself after SIGTERM (a dropped chain costs a reconnect per hop). */
const OWNER_GRACE_MS = 60_000;
/** An `up` that handed its teardown to a cleanup exits at once; this is only in case it has not yet. */
const HANDED_OVER_EXIT_MS = 5_000;
/** A cleanup told to stop (SIGTERM) is gone at once: it saves the record after every step. */
const CLEANUP_STOP_MS = 5_000;
/**
 * A cleanup tries again while something is left (a hop out of reach for a
 * while), waiting longer each time, for up to this long in all. Past it,
 * what is left has mostly timed out by itself (mosh-server waits 60 s for a
 * first client, a relay 120 s), and the record keeps the rest for `down`.
 */
const CLEANUP_PATIENCE_MS = 5 * 60_000;
const CLEANUP_RETRY_MS = [2_000, 4_000, 8_000, 15_000, 30_000];

export async function down(ctx: CommandContext): Promise<number> {
  const store = new SessionStore(stateDir(ctx.io.env));
  const force = ctx.values.force === true;
  const name = ctx.positionals[0];
  const id = typeof ctx.values.id === 'string' ? ctx.values.id : undefined;
  if (id !== undefined && (name !== undefined || ctx.values.all === true))
    throw UserError.one(
      '--id names one session: give it alone, without NAME or --all',
      'moshctl down --id ID',
    );
  const { selected, unreadable } = select(ctx, store);
  const out = (line: string): void => ctx.io.stdout(`${line}\n`);
  for (const { file } of unreadable) {
    ctx.io.stderr(
      `moshctl: unreadable state file ${describeUnreadable(file)}\n  hint: ${unreadableHint(file)}\n`,
    );
  }
  // Only a file known to be among those asked for fails `down`; one with no readable name may be anyone's.
  let failed = unreadable.some((u) => u.asked);
  if (selected.length === 0) {
    if (!failed)
      out(
        id !== undefined
          ? `no session with id ${id} to stop`
          : name
            ? `no session named ${name} to stop`
            : 'no sessions to stop',
      );
    return failed ? ExitCode.environment : ExitCode.ok;
  }
  for (const selectedRecord of selected) {
    let record = selectedRecord;
    const own = owner(record);
    if (record.cleanup && own.kind !== 'other-machine') {
      // Its `up` stopped waiting and left the teardown to a cleanup: this one, or another.
      const fresh = await takeOver(ctx, store, record, id !== undefined);
      if (!fresh) {
        out(`${record.id}: stopped by its cleanup`);
        continue;
      }
      record = fresh;
      if (isCleanup(record)) {
        if (!(await cleanUp(ctx, store, record))) failed = true;
        continue;
      }
    } else if (own.kind === 'other-machine') {
      if (!force) {
        out(`${record.id}: left alone: ${ownedBy(record, own.machine)}`);
        // Asked for by name, it was not stopped; --all and a whole config skip it on purpose.
        if (name !== undefined) failed = true;
        continue;
      }
      ctx.io.stderr(
        `moshctl: ${record.id}: --force: stopping a session of ${own.machine} from here; its moshctl up there (if it runs) is not signalled\n`,
      );
    } else if (own.kind === 'gone') {
      ctx.io.stderr(
        `moshctl: ${record.id}: crashed: its moshctl up is gone: ${own.why}; stopping what it started\n`,
      );
    } else if (own.kind === 'alive') {
      await stopOwner(record);
      // The owner tore down what it could; what it left is in the record, read afresh.
      const fresh = store.list().records.find((r) => r.id === record.id);
      if (!fresh) {
        out(`${record.id}: stopped by its moshctl up process (pid ${record.pid})`);
        continue;
      }
      record = fresh;
    }
    if (!(await stopRecorded(ctx, store, record))) failed = true;
  }
  return failed ? ExitCode.environment : ExitCode.ok;
}

/** Teardown from `record`; removes it when nothing is left. Whether nothing is. */
async function stopRecorded(
  ctx: CommandContext,
  store: SessionStore,
  record: SessionRecord,
): Promise<boolean> {
  const report = await teardown(
    record,
    new SshRunner(record.route, {
      ...sshConfigOption(ctx.io.env),
      prompter: terminalPrompter(),
      ...debugChainOption(ctx.io.env, ctx.io.stderr),
    }),
    {
      save: (r) => store.write(r),
      log: (line) => ctx.io.stderr(`moshctl: ${record.id}: ${line}\n`),
    },
  );
  if (report.left.length > 0) return false;
  store.remove(record.id);
  ctx.io.stdout(`${record.id}: stopped ${report.stopped.join(', ') || 'nothing (already gone)'}\n`);
  return true;
}

/** Whether this process is the cleanup `record` names (or one about to be named: its pid is written just after it starts). */
function isCleanup(record: SessionRecord): boolean {
  return record.cleanup !== undefined && (record.cleanup.pid ?? process.pid) === process.pid;
}

/**
 * A session whose `up` handed its teardown to a cleanup. Its `up` is never
 * signalled (it is exiting, or gone); a cleanup other than this process is
 * told to stop (SIGTERM), and this process goes on from the record it left,
 * without its cleanup. The record read afresh, or undefined once it is gone.
 */
async function takeOver(
  ctx: CommandContext,
  store: SessionStore,
  record: SessionRecord,
  byId: boolean,
): Promise<SessionRecord | undefined> {
  const deadline = Date.now() + HANDED_OVER_EXIT_MS;
  while (owner(record).kind === 'alive' && Date.now() < deadline) await sleep(50);
  if (byId && isCleanup(record)) return record;
  const cleanup = cleanupOwner(record);
  if (cleanup?.kind === 'alive') {
    ctx.io.stderr(`moshctl: ${record.id}: taking over from its cleanup (pid ${cleanup.pid})\n`);
    try {
      process.kill(cleanup.pid, 'SIGTERM');
    } catch {
      // ended meanwhile
    }
    const stop = Date.now() + CLEANUP_STOP_MS;
    while (cleanupOwner(record)?.kind === 'alive' && Date.now() < stop) await sleep(50);
  }
  const fresh = store.list().records.find((r) => r.id === record.id);
  if (!fresh) return undefined;
  delete fresh.cleanup;
  store.write(fresh);
  return fresh;
}

/**
 * The cleanup an `up` left: teardown from the record, again after a pause
 * while something is left (a hop out of reach for a while), for up to
 * CLEANUP_PATIENCE_MS; it stops early once the record is gone or no longer
 * names it (a `down` took over). Its output is its log (state/ID.log).
 */
async function cleanUp(ctx: CommandContext, store: SessionStore, first: SessionRecord): Promise<boolean> {
  const started = Date.now();
  let record = first;
  const say = (line: string): void => ctx.io.stderr(`${new Date().toISOString()} ${line}\n`);
  say(`cleaning up ${record.id} for moshctl up (pid ${record.pid})`);
  for (let attempt = 0; ; attempt++) {
    if (await stopRecorded(ctx, store, record)) return true;
    const pause = CLEANUP_RETRY_MS[Math.min(attempt, CLEANUP_RETRY_MS.length - 1)] ?? 30_000;
    if (Date.now() + pause - started > CLEANUP_PATIENCE_MS) {
      say(
        `giving up after ${Math.round((Date.now() - started) / 1000)} s; "moshctl down ${record.name}" tries again`,
      );
      return false;
    }
    say(`trying again in ${pause / 1000} s`);
    await sleep(pause);
    const fresh = store.list().records.find((r) => r.id === record.id);
    if (!fresh || !isCleanup(fresh)) {
      say('another moshctl down took over');
      return true;
    }
    record = fresh;
  }
}

/** The sessions asked for, and every unreadable state file that is, or may be, one of them. */
function select(
  ctx: CommandContext,
  store: SessionStore,
): { selected: SessionRecord[]; unreadable: { file: UnreadableRecord; asked: boolean }[] } {
  const { records, unreadable } = store.list();
  if (ctx.values.all)
    return { selected: records, unreadable: unreadable.map((file) => ({ file, asked: true })) };
  const id = ctx.values.id;
  if (typeof id === 'string') {
    // One session, whatever its config: no config is read (a cleanup runs it from anywhere).
    return {
      selected: records.filter((r) => r.id === id),
      unreadable: unreadable
        .filter((u) => basename(u.file) === `${id}.json`)
        .map((file) => ({ file, asked: true })),
    };
  }
  let files: string[];
  try {
    files = discoverFiles({ files: ctx.files, env: ctx.io.env, cwd: ctx.io.cwd });
  } catch (e) {
    // Sessions are found by the config they came from; from elsewhere, --all still reaches them.
    if (e instanceof UserError) {
      throw new UserError(
        e.problems.map((p) => ({ ...p, hint: `${p.hint ?? ''}; or run "moshctl down --all"` })),
      );
    }
    throw e;
  }
  const name = ctx.positionals[0];
  // undefined: the file does not say (its name or config files could not be read).
  const matchesWith = (anyConfig: boolean) => (r: { name?: string; configFiles?: string[] }) => {
    if (r.configFiles !== undefined && !anyConfig && !sameFiles(r.configFiles, files)) return false;
    if (name !== undefined && r.name !== undefined && r.name !== name) return false;
    return r.configFiles !== undefined && (name === undefined || r.name !== undefined) ? true : undefined;
  };
  // `down NAME` works from anywhere: NAME's sessions of this folder's config, else NAME's
  // sessions whatever config (or none) they came from; the records say how to reach their
  // hosts. Without NAME, only this config's sessions (those started without a file, where there is none).
  const here = records.filter((r) => matchesWith(false)(r) === true);
  const anyConfig = name !== undefined && here.length === 0;
  const matches = matchesWith(anyConfig);
  return {
    selected: anyConfig ? records.filter((r) => matches(r) === true) : here,
    unreadable: unreadable
      .map((file) => ({ file, asked: matches(file) }))
      .filter((u) => u.asked !== false)
      .map(({ file, asked }) => ({ file, asked: asked === true })),
  };
}

/** Who runs a session of another machine, and how it can be ended. */
function ownedBy(record: SessionRecord, machine: string): string {
  const how = `"moshctl down ${record.name}" there, or "moshctl down ${record.name} --force" here, ends it`;
  return record.detached
    ? `it was started on ${machine} with --no-connect; ${how}`
    : `its moshctl up runs on ${machine} (pid ${record.pid}); ${how}`;
}

function unreadableHint(u: UnreadableRecord): string {
  const rm = `rm ${shellWord(u.file)}`;
  return u.newer
    ? `a newer moshctl wrote it: stop its session with that version; if the session is over, remove the file (${rm})`
    : `if its session is over, remove the file (${rm}); a server or relay it recorded that still runs must then be stopped by hand`;
}

function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

export function sameFiles(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((f, i) => f === b[i]);
}

/** SIGTERM to the `up` process: it ends its mosh-client and tears down itself. Waits until it has exited. */
async function stopOwner(record: SessionRecord): Promise<void> {
  try {
    process.kill(record.pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + OWNER_GRACE_MS;
  while (owner(record).kind === 'alive' && Date.now() < deadline) await sleep(100);
}

// `moshctl down [NAME] [--all] [--force] [--id ID]`: stop sessions from their
// records, from any terminal, after moshctl was killed, when a host is gone,
// and twice in a row. A session another machine runs (a state folder on a
// shared home) is left to that machine unless --force; a state file that
// cannot be read is reported with what to do about it, never acted on.
// `down --id ID` is also what an `up` that stops waiting (a second Ctrl-C)
// leaves running, detached, to finish its teardown: cli/cleanup.ts has both
// sides of that hand-over.
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { discoverFiles } from '../../config/discover.js';
import { ExitCode, UserError } from '../../errors.js';
import { SshRunner, sshConfigOption } from '../../execute/ssh-runner.js';
import { debugChainOption } from '../../transport/debug-chain.js';
import { terminalPrompter } from '../prompt.js';
import { teardown } from '../../execute/teardown.js';
import { owner } from '../../state/owner.js';
import { cleanUp, isCleanup, takeOver } from '../cleanup.js';
import type { SessionRecord } from '../../state/record.js';
import { describeUnreadable, SessionStore, stateDir, type UnreadableRecord } from '../../state/store.js';
import type { CommandContext } from '../context.js';

/** How long the owning `up` process gets to tear down by itself after SIGTERM (a dropped chain costs a reconnect per hop). */
const OWNER_GRACE_MS = 60_000;
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
      const fresh = await takeOver(ctx.io.stderr, store, record, id !== undefined);
      if (!fresh) {
        out(`${record.id}: stopped by its cleanup`);
        continue;
      }
      record = fresh;
      if (isCleanup(record)) {
        const stop = (r: SessionRecord): Promise<boolean> => stopRecorded(ctx, store, r);
        if (!(await cleanUp(ctx.io.stderr, store, record, stop))) failed = true;
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

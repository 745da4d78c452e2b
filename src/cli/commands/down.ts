// `moshctl down [NAME] [--all]`: stop sessions from their records, from any
// terminal, after moshctl was killed, when a host is gone, and twice in a row.
import { setTimeout as sleep } from 'node:timers/promises';
import { discoverFiles } from '../../config/discover.js';
import { ExitCode, UserError } from '../../errors.js';
import { SshRunner, sshConfigOption } from '../../execute/ssh-runner.js';
import { terminalPrompter } from '../prompt.js';
import { teardown } from '../../execute/teardown.js';
import { ownerAlive } from '../../state/owner.js';
import type { SessionRecord } from '../../state/record.js';
import { SessionStore, stateDir } from '../../state/store.js';
import type { CommandContext } from '../main.js';

/** How long the owning `up` process gets to tear down by itself after SIGTERM (a dropped chain costs a reconnect per hop). */
const OWNER_GRACE_MS = 60_000;

export async function down(ctx: CommandContext): Promise<number> {
  const store = new SessionStore(stateDir(ctx.io.env));
  const selected = select(ctx, store);
  const out = (line: string): void => ctx.io.stdout(`${line}\n`);
  if (selected.length === 0) {
    out(ctx.positionals[0] ? `no session named ${ctx.positionals[0]} to stop` : 'no sessions to stop');
    return ExitCode.ok;
  }
  let failed = false;
  for (const selectedRecord of selected) {
    let record = selectedRecord;
    if (ownerAlive(record)) {
      await stopOwner(record);
      // The owner tore down what it could; what it left is in the record, read afresh.
      const fresh = store.list().records.find((r) => r.id === record.id);
      if (!fresh) {
        out(`${record.id}: stopped by its moshctl up process (pid ${record.pid})`);
        continue;
      }
      record = fresh;
    }
    const report = await teardown(
      record,
      new SshRunner(record.route, { ...sshConfigOption(ctx.io.env), prompter: terminalPrompter() }),
      {
        save: (r) => store.write(r),
        log: (line) => ctx.io.stderr(`moshctl: ${record.id}: ${line}\n`),
      },
    );
    if (report.left.length === 0) {
      store.remove(record.id);
      out(`${record.id}: stopped ${report.stopped.join(', ') || 'nothing (already gone)'}`);
    } else {
      failed = true;
    }
  }
  return failed ? ExitCode.environment : ExitCode.ok;
}

function select(ctx: CommandContext, store: SessionStore): SessionRecord[] {
  const { records, damaged } = store.list();
  for (const d of damaged)
    ctx.io.stderr(`moshctl: ignoring unreadable state file ${d}; remove it if it is stale\n`);
  if (ctx.values.all) return records;
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
  return records.filter((r) => sameFiles(r.configFiles, files) && (name === undefined || r.name === name));
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
  while (ownerAlive(record) && Date.now() < deadline) await sleep(100);
}

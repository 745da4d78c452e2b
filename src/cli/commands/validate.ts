// `moshctl validate [--json]`: "ok" (or that there is no file, and none is needed), or every problem with file, line and column (exit 2).
// With --json the same as data on stdout, problems included: there they are the answer.
import { ExitCode, UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { noFileNote } from '../../config/discover.js';
import { load } from './common.js';

/** The format of `validate --json`; bumped when a field changes meaning. */
const VALIDATE_JSON_VERSION = 1;

export async function run(ctx: CommandContext): Promise<number> {
  if (!ctx.values.json) {
    const { files } = load(ctx);
    // Without a file there is nothing to check, and nothing wrong: ssh_config is enough.
    ctx.io.stdout(files.length > 0 ? 'ok\n' : `${noFileNote(ctx.io.cwd)}\n`);
    return Promise.resolve(ExitCode.ok);
  }
  try {
    const { files } = load(ctx);
    const none = files.length === 0 ? { note: noFileNote(ctx.io.cwd) } : {};
    ctx.io.stdout(
      `${JSON.stringify({ version: VALIDATE_JSON_VERSION, ok: true, files, problems: [], ...none }, null, 2)}\n`,
    );
    return Promise.resolve(ExitCode.ok);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    ctx.io.stdout(
      `${JSON.stringify({ version: VALIDATE_JSON_VERSION, ok: false, problems: e.problems }, null, 2)}\n`,
    );
    return Promise.resolve(e.exitCode);
  }
}

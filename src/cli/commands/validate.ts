// `moshctl validate [--json]`: "ok", or every problem with file, line and column (exit 2).
// With --json the same as data on stdout, problems included: there they are the answer.
import { ExitCode, UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { load } from './common.js';

/** The format of `validate --json`; bumped when a field changes meaning. */
const VALIDATE_JSON_VERSION = 1;

export async function run(ctx: CommandContext): Promise<number> {
  if (!ctx.values.json) {
    load(ctx);
    ctx.io.stdout('ok\n');
    return Promise.resolve(ExitCode.ok);
  }
  try {
    const { files } = load(ctx);
    ctx.io.stdout(
      `${JSON.stringify({ version: VALIDATE_JSON_VERSION, ok: true, files, problems: [] }, null, 2)}\n`,
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

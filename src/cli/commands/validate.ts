import { ExitCode } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  load(ctx);
  ctx.io.stdout('ok\n');
  return Promise.resolve(ExitCode.ok);
}

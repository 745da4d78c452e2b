import { stringify } from 'yaml';
import { ExitCode } from '../../errors.js';
import type { CommandContext } from '../main.js';
import { load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  const loaded = load(ctx);
  const data = ctx.values.resolved ? loaded.config : loaded.data;
  ctx.io.stdout(ctx.values.json ? `${JSON.stringify(data, null, 2)}\n` : stringify(data));
  return Promise.resolve(ExitCode.ok);
}

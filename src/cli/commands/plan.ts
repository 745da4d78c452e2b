import { ExitCode } from '../../errors.js';
import { formatPlan } from '../../plan/format.js';
import { planUp } from '../../plan/plan.js';
import type { CommandContext } from '../main.js';
import { load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  const { config } = load(ctx);
  const plan = planUp(config, ctx.positionals[0] ?? '', {}, { command: ctx.rest });
  ctx.io.stdout(ctx.values.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
  return Promise.resolve(ExitCode.ok);
}

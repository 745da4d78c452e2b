import { resolveRoute } from '../../config/hosts.js';
import { sshGContext } from '../../config/ssh-g.js';
import { ExitCode } from '../../errors.js';
import { formatPlan } from '../../plan/format.js';
import { planUp } from '../../plan/plan.js';
import { transportOption } from './transport.js';
import type { CommandContext } from '../context.js';
import { load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  const loaded = load(ctx);
  const name = ctx.positionals[0] ?? '';
  const config = await resolveRoute(loaded, name, { ...sshGContext(ctx.io.env) });
  const transport = transportOption(ctx.values.transport);
  const plan = planUp(
    config,
    name,
    {},
    {
      command: ctx.rest,
      noConnect: ctx.values['no-connect'] === true,
      ...(transport ? { transport } : {}),
    },
  );
  ctx.io.stdout(ctx.values.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
  return ExitCode.ok;
}

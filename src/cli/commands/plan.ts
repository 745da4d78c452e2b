import { firstHopResolves, resolveRoute } from '../../config/hosts.js';
import { ExitCode } from '../../errors.js';
import { formatPlan } from '../../plan/format.js';
import { planUp } from '../../plan/plan.js';
import { planOptions } from './plan-options.js';
import type { CommandContext } from '../context.js';
import { hostsContext, load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  // A mistake in an option stops here, before ssh_config is read.
  const options = planOptions(ctx);
  const loaded = load(ctx);
  const name = ctx.positionals[0] ?? '';
  const config = await resolveRoute(loaded, name, hostsContext(ctx));
  // Only a first hop behind a ProxyCommand is looked up: the transport may depend on it.
  const observed = { firstHopResolves: await firstHopResolves(config, name) };
  const plan = planUp(config, name, observed, options);
  ctx.io.stdout(ctx.values.json ? `${JSON.stringify(plan, null, 2)}\n` : formatPlan(plan));
  return ExitCode.ok;
}

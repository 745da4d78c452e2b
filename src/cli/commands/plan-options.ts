// The options `up` and `plan` share, checked here so a mistake names the
// option and what it takes, before any host is touched.
import { parseBindServer } from '../../config/bind.js';
import type { BindServer } from '../../config/types.js';
import { UserError } from '../../errors.js';
import type { PlanOptions } from '../../plan/plan.js';
import type { CommandContext } from '../context.js';
import { transportOption } from './transport.js';

export function planOptions(ctx: CommandContext): PlanOptions {
  const transport = transportOption(ctx.values.transport);
  const bindServer = bindServerOption(ctx.values['bind-server']);
  return {
    command: ctx.rest,
    noConnect: ctx.values['no-connect'] === true,
    ...(transport ? { transport } : {}),
    ...(bindServer !== undefined ? { bindServer } : {}),
  };
}

function bindServerOption(value: unknown): BindServer | undefined {
  if (value === undefined) return undefined;
  const r = parseBindServer(value);
  if (r.ok) return r.value;
  throw UserError.one(`--bind-server ${r.message}`, r.hint);
}

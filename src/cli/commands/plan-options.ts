// The options `up` and `plan` share, checked here so a mistake names the
// option and what it takes, before any host is touched.
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { parseBindServer } from '../../config/bind.js';
import {
  parseClientProgram,
  parsePredict,
  parseServerProgram,
  type Checked,
} from '../../config/mosh-programs.js';
import { UserError } from '../../errors.js';
import { FLAGS, parseForward } from '../../forward/spec.js';
import type { ForwardKind } from '../../forward/types.js';
import type { CliForward } from '../../plan/forwards.js';
import type { PlanOptions } from '../../plan/plan.js';
import type { CommandContext } from '../context.js';
import { transportOption } from './transport.js';

export function planOptions(ctx: CommandContext): PlanOptions {
  const v = ctx.values;
  const transport = transportOption(v.transport);
  const bindServer = option('--bind-server', v['bind-server'], parseBindServer);
  const server = option('--server', v.server, parseServerProgram);
  const client = option('--client', v.client, parseClientProgram);
  const predict = option('--predict', v.predict, parsePredict);
  const forwards = forwardOptions(v);
  return {
    command: ctx.rest,
    noConnect: v['no-connect'] === true,
    ...(transport ? { transport } : {}),
    ...(bindServer !== undefined ? { bindServer } : {}),
    ...(server !== undefined ? { server } : {}),
    ...(client !== undefined ? { client: localProgram(client, ctx) } : {}),
    ...(predict !== undefined ? { predict } : {}),
    ...(v['predict-overwrite'] === true ? { predictOverwrite: true } : {}),
    ...(v['no-init'] === true ? { noInit: true } : {}),
    ...(forwards.length > 0 ? { forwards } : {}),
    ...(v['forward-agent'] === true ? { forwardAgent: true } : {}),
  };
}

const FORWARD_OPTIONS: [string, ForwardKind][] = [
  ['local-forward', 'local'],
  ['remote-forward', 'remote'],
  ['dynamic-forward', 'dynamic'],
];

/**
 * -L, -R and -D, each checked now, so a mistake stops before ssh_config is
 * read; the planner reads them again with the target's GatewayPorts.
 */
function forwardOptions(v: CommandContext['values']): CliForward[] {
  return FORWARD_OPTIONS.flatMap(([name, kind]) => {
    const given = v[name];
    const list = Array.isArray(given) ? given : typeof given === 'string' ? [given] : [];
    return list.map((arg) => {
      const r = parseForward(kind, arg, 'command line');
      if (!r.ok) throw UserError.one(`${FLAGS[kind]} ${r.message}`, r.hint);
      return { kind, arg };
    });
  });
}

function option<T>(name: string, value: unknown, parse: (v: unknown) => Checked<T>): T | undefined {
  if (value === undefined) return undefined;
  const r = parse(value);
  if (r.ok) return r.value;
  throw UserError.one(`${name} ${r.message}`, r.hint);
}

/** --client as typed in a shell: `~` is $HOME, a relative path is relative to here, a bare name is looked up on PATH. */
function localProgram(path: string, ctx: CommandContext): string {
  const home = ctx.io.env.HOME ?? homedir();
  if (path === '~') return home;
  if (path.startsWith('~/')) return resolve(home, path.slice(2));
  if (!path.includes('/') || isAbsolute(path)) return path;
  return resolve(ctx.io.cwd, path);
}

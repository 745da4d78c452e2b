import { stringify } from 'yaml';
import { noFileNote } from '../../config/discover.js';
import { resolveAll, resolveRoute } from '../../config/hosts.js';
import type { HostConfig } from '../../config/types.js';
import { ExitCode, UserError } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { hostsContext, load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  const loaded = load(ctx);
  const name = ctx.positionals[0];
  if (name !== undefined && !ctx.values.resolved)
    throw UserError.one(
      `config takes a NAME only with --resolved`,
      `run "moshctl config --resolved ${name}" to see ${name}'s route as up sees it`,
    );
  const none = loaded.files.length === 0;
  if (!ctx.values.resolved || (none && name === undefined)) {
    // Nothing to print but that there is no file, and none is needed.
    if (none) {
      const note = `${noFileNote(ctx.io.cwd)}; "moshctl config --resolved NAME" shows a host as up sees it`;
      if (ctx.values.json) ctx.io.stdout(`${JSON.stringify({ files: [], note }, null, 2)}\n`);
      else ctx.io.stdout(`# ${note}\n`);
      return ExitCode.ok;
    }
    ctx.io.stdout(ctx.values.json ? `${JSON.stringify(loaded.data, null, 2)}\n` : stringify(loaded.data));
    return ExitCode.ok;
  }
  // Every host (or NAME's route) as `up` would see it: moshproxy.yaml, then ssh_config, then OpenSSH's defaults.
  const g = hostsContext(ctx);
  const config = name !== undefined ? await resolveRoute(loaded, name, g) : await resolveAll(loaded, g);
  if (ctx.values.json) {
    ctx.io.stdout(`${JSON.stringify(config, null, 2)}\n`);
    return ExitCode.ok;
  }
  ctx.io.stdout(
    `# where each value comes from: ${none ? '' : `file:line of ${loaded.files.join(', ')}, `}ssh_config, default, or chosen (by moshctl, with why)\n`,
  );
  ctx.io.stdout(`files: ${JSON.stringify(config.files)}\nhosts:\n`);
  for (const h of Object.values(config.hosts)) ctx.io.stdout(describeHost(h));
  return ExitCode.ok;
}

/** One host as YAML, each ssh setting with its source as a comment. */
function describeHost(h: HostConfig): string {
  const { sources, relay, mosh, origin: _origin, name, forwards, forward_notes, ...ssh } = h;
  const lines = [`  ${name}:`];
  for (const [key, value] of Object.entries({ ...ssh, chain: h.chain })) {
    if (key === 'sources' || value === undefined) continue;
    const source = sources[key as keyof typeof sources];
    lines.push(`    ${key}: ${JSON.stringify(value)}${source ? `  # ${source}` : ''}`);
  }
  // Each forward with where it was asked for: the lists of one layer replace another's whole.
  const from = sources.forwards ? `  # ${sources.forwards}` : '';
  lines.push(`    forwards:${forwards.length === 0 ? ' []' : ''}${from}`);
  for (const f of forwards) lines.push(`      - ${JSON.stringify(f.text)}  # ${f.source}`);
  for (const n of forward_notes) lines.push(`    # note: ${n}`);
  lines.push(`    relay: ${JSON.stringify({ ...relay })}`, `    mosh: ${JSON.stringify({ ...mosh })}`);
  return `${lines.join('\n')}\n`;
}

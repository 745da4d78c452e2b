import { stringify } from 'yaml';
import { resolveAll } from '../../config/hosts.js';
import { sshGContext } from '../../config/ssh-g.js';
import type { HostConfig } from '../../config/types.js';
import { ExitCode } from '../../errors.js';
import type { CommandContext } from '../context.js';
import { load } from './common.js';

export async function run(ctx: CommandContext): Promise<number> {
  const loaded = load(ctx);
  if (!ctx.values.resolved) {
    ctx.io.stdout(ctx.values.json ? `${JSON.stringify(loaded.data, null, 2)}\n` : stringify(loaded.data));
    return ExitCode.ok;
  }
  // Every host as `up` would see it: moshproxy.yaml, then ssh_config, then OpenSSH's defaults.
  const config = await resolveAll(loaded, { ...sshGContext(ctx.io.env) });
  if (ctx.values.json) {
    ctx.io.stdout(`${JSON.stringify(config, null, 2)}\n`);
    return ExitCode.ok;
  }
  ctx.io.stdout(
    `# where each value comes from: file:line of ${loaded.files.join(', ')}, ssh_config, or default\n`,
  );
  ctx.io.stdout(`files: ${JSON.stringify(config.files)}\nhosts:\n`);
  for (const h of Object.values(config.hosts)) ctx.io.stdout(describeHost(h));
  return ExitCode.ok;
}

/** One host as YAML, each ssh setting with its source as a comment. */
function describeHost(h: HostConfig): string {
  const { sources, relay, mosh, origin: _origin, name, ...ssh } = h;
  const lines = [`  ${name}:`];
  for (const [key, value] of Object.entries({ ...ssh, chain: h.chain })) {
    if (key === 'sources' || value === undefined) continue;
    const source = sources[key as keyof typeof sources];
    lines.push(`    ${key}: ${JSON.stringify(value)}${source ? `  # ${source}` : ''}`);
  }
  lines.push(`    relay: ${JSON.stringify({ ...relay })}`, `    mosh: ${JSON.stringify({ ...mosh })}`);
  return `${lines.join('\n')}\n`;
}

import { discoverFiles } from '../../config/discover.js';
import type { HostsContext } from '../../config/hosts.js';
import { loadConfig, type Loaded } from '../../config/load.js';
import { sshGContext } from '../../config/ssh-g.js';
import { ssh2Needs } from '../../ssh/needs.js';
import type { CommandContext } from '../context.js';

export function load(ctx: CommandContext): Loaded {
  return loadConfig(discoverFiles({ files: ctx.files, env: ctx.io.env, cwd: ctx.io.cwd }), ctx.io.env);
}

/** How hosts are completed from ssh_config, and what picks the ssh client when nothing names one. */
export function hostsContext(ctx: CommandContext): HostsContext {
  return { ...sshGContext(ctx.io.env), ssh2Needs: (host) => ssh2Needs(host) };
}

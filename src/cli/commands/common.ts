import { discoverFiles } from '../../config/discover.js';
import { loadConfig, type Loaded } from '../../config/load.js';
import type { CommandContext } from '../context.js';

export function load(ctx: CommandContext): Loaded {
  return loadConfig(discoverFiles({ files: ctx.files, env: ctx.io.env, cwd: ctx.io.cwd }), ctx.io.env);
}

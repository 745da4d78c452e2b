// up, down and status: declared with their help here; they drive real hosts
// and arrive with the session issue.
import { EnvError } from '../../errors.js';
import type { CommandContext } from '../main.js';

const notYet = (name: string) => async (_ctx: CommandContext) =>
  Promise.reject(
    new EnvError(
      `"moshctl ${name}" is not available in this version yet`,
      'use "moshctl plan NAME" to see what it will do',
    ),
  );

export const up = notYet('up');
export const down = notYet('down');
export const status = notYet('status');

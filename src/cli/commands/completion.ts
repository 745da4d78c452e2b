// `moshctl completion SHELL` prints a completion script built from spec.ts;
// `moshctl completion __hosts`, which the scripts run at each TAB, prints the
// host names of the config in effect, one per line.
import { ExitCode, UserError } from '../../errors.js';
import { bashScript } from '../completion/bash.js';
import { fishScript } from '../completion/fish.js';
import { completionHosts } from '../completion/hosts.js';
import { completionModel, HOSTS_ARG, shells, type CompletionModel, type Shell } from '../completion/model.js';
import { zshScript } from '../completion/zsh.js';
import type { CommandContext } from '../context.js';
import { version } from '../report.js';

const scripts: Record<Shell, (m: CompletionModel, version: string) => string> = {
  bash: bashScript,
  zsh: zshScript,
  fish: fishScript,
};

const isShell = (s: string): s is Shell => (shells as readonly string[]).includes(s);

export async function run(ctx: CommandContext): Promise<number> {
  const what = ctx.positionals[0] ?? '';
  if (what === HOSTS_ARG) {
    // Never an error: a message on stderr would land in the middle of the user's command line.
    ctx.io.stdout(
      completionHosts(ctx.files, ctx.io)
        .map((h) => `${h}\n`)
        .join(''),
    );
    return Promise.resolve(ExitCode.ok);
  }
  if (!isShell(what)) {
    throw UserError.one(
      `unknown shell "${what}": completion scripts exist for ${shells.join(', ')}`,
      `run one of: ${shells.map((s) => `moshctl completion ${s}`).join(', ')}`,
    );
  }
  ctx.io.stdout(scripts[what](completionModel(), version()));
  return Promise.resolve(ExitCode.ok);
}

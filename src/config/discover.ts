// Which files make up the config, in merge order: -f files as given, else
// MOSHCTL_FILE, else moshproxy.yaml found walking up from the working
// directory plus a moshproxy.override.yaml beside it (a person's own user
// name or key over the team's file), like docker compose; else none at all,
// which is fine: names then come from ssh_config alone.
import { existsSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { UserError } from '../errors.js';

export const CONFIG_NAME = 'moshproxy.yaml';
export const OVERRIDE_NAME = 'moshproxy.override.yaml';

export interface DiscoverOptions {
  files: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
}

export function discoverFiles({ files, env, cwd }: DiscoverOptions): string[] {
  const given = files.length > 0 ? files : (env.MOSHCTL_FILE?.split(delimiter).filter(Boolean) ?? []);
  if (given.length > 0) {
    const paths = given.map((f) => resolve(cwd, f));
    const missing = paths.filter((p) => !existsSync(p));
    if (missing.length > 0) {
      const how = files.length > 0 ? 'given with -f' : 'named by MOSHCTL_FILE';
      throw new UserError(
        missing.map((p) => ({ message: `config file not found: ${p} (${how})`, hint: 'check the path' })),
      );
    }
    return paths;
  }
  return findUpwards(cwd) ?? [];
}

/**
 * moshproxy.yaml walking up from `cwd`, with its override beside it, or
 * undefined: no file is needed, since every name can come from ssh_config.
 */
function findUpwards(cwd: string): string[] | undefined {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, CONFIG_NAME);
    if (existsSync(candidate)) {
      const override = join(dir, OVERRIDE_NAME);
      return existsSync(override) ? [candidate, override] : [candidate];
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/** The config files for a message: "a.yaml, b.yaml", or that there is none. */
export function filesLabel(files: readonly string[]): string {
  return files.length > 0 ? files.join(', ') : `no ${CONFIG_NAME}`;
}

/** What a command that is about the file itself (validate, config) says when there is none. */
export function noFileNote(cwd: string): string {
  return (
    `no ${CONFIG_NAME} found in ${resolve(cwd)} or any folder above it, and none is needed: ` +
    `moshctl up NAME works for any NAME that "ssh NAME" reaches (from ~/.ssh/config and OpenSSH's defaults); ` +
    `a team adds a ${CONFIG_NAME} for shared hosts, chains and mosh settings (see examples/)`
  );
}

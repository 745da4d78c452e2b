// Which files make up the config, in merge order: -f files as given, else
// MOSHCTL_FILE, else moshproxy.yaml found walking up from the working
// directory plus a moshproxy.override.yaml beside it (a person's own user
// name or key over the team's file), like docker compose.
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
  const looked: string[] = [];
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const candidate = join(dir, CONFIG_NAME);
    looked.push(candidate);
    if (existsSync(candidate)) {
      const override = join(dir, OVERRIDE_NAME);
      return existsSync(override) ? [candidate, override] : [candidate];
    }
    if (dirname(dir) === dir) break;
  }
  throw UserError.one(
    `no ${CONFIG_NAME} found in ${resolve(cwd)} or any folder above it (looked at ${looked.join(', ')})`,
    `create one (see examples/), pass -f FILE, or set MOSHCTL_FILE`,
  );
}

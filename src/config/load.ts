// config → checked, resolved config. Every stage collects all its problems;
// a UserError carries them together so one run shows everything to fix.
import { UserError, type Problem } from '../errors.js';
import type { Env } from './interpolate.js';
import { mergeSources, type Merged } from './merge.js';
import { declareHosts, resolveConfig, type DeclaredConfig, type RawConfig } from './resolve.js';
import { checkRules } from './rules.js';
import { checkSchema } from './schema.js';
import { readSource } from './read.js';
import type { Origins } from './source.js';
import type { ResolvedConfig } from './types.js';

export interface Loaded extends Merged {
  files: string[];
  /** moshproxy.yaml's hosts with OpenSSH's defaults, without consulting ssh_config. */
  config: ResolvedConfig;
  /** What moshproxy.yaml itself says, for completing hosts with ssh_config (hosts.ts). */
  declared: DeclaredConfig;
}

/** Reads, interpolates, merges and checks; throws UserError listing every problem. */
export function loadConfig(files: string[], env: Env): Loaded {
  // No moshproxy.yaml: every name comes from ssh_config, with moshctl's own defaults.
  if (files.length === 0) return fromData([], { version: 1 }, new Map(), env);
  const sources = files.map((file) => readSource(file, env));
  // concat, not push(...): a big file may have more problems than a call takes arguments.
  let problems: Problem[] = sources.flatMap((s) => s.problems);
  // Syntax errors leave nothing to check further; interpolation errors do not.
  if (sources.some((s) => s.data === undefined)) throw new UserError(problems);

  const merged = mergeSources(sources);
  const fallback = { file: files[files.length - 1] ?? '', line: 1, column: 1 };
  // A value already reported as a broken interpolation is not reported again as, say, an empty address.
  const reported = new Set(problems.map(spot));
  const checks = [
    ...checkSchema(merged.data, merged.origins, fallback),
    ...checkRules(merged.data, merged.origins, fallback),
  ];
  problems = problems.concat(checks.filter((p) => !reported.has(spot(p))));
  if (problems.length > 0) {
    throw new UserError(problems.sort((a, b) => compare(a, b)));
  }
  return fromData(files, merged.data as RawConfig, merged.origins, env);
}

function fromData(files: string[], data: RawConfig, origins: Origins, env: Env): Loaded {
  const ctx = {
    files,
    origins,
    // `~` in a file means $HOME, as in a shell; os.homedir() is the fallback.
    ...(env.HOME ? { home: env.HOME } : {}),
  };
  const declared = declareHosts(data, ctx);
  let config: ResolvedConfig | undefined;
  return {
    data,
    origins,
    files,
    declared,
    // Made when first asked for: commands resolve one route (hosts.ts), and validate none.
    get config(): ResolvedConfig {
      return (config ??= resolveConfig(declared, ctx));
    },
  };
}

function spot(p: Problem): string {
  return `${p.file}:${p.line}:${p.column}`;
}

function compare(a: Problem, b: Problem): number {
  return (
    // localeCompare is slow, and most problems of a long list share a file.
    (a.file === b.file ? 0 : (a.file ?? '').localeCompare(b.file ?? '')) ||
    (a.line ?? 0) - (b.line ?? 0) ||
    (a.column ?? 0) - (b.column ?? 0)
  );
}

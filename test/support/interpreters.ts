// The real python3 and perl interpreters of this machine, for the tests that run
// the relay and the forwarder in each runtime exactly as a hop would start them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What `cmd args` prints, trimmed; undefined when it prints nothing or cannot run. */
export const interpreter = (cmd: string, args: string[]): string | undefined =>
  spawnSync(cmd, args, { encoding: 'utf8' }).stdout?.trim() || undefined;

// The interpreters themselves: python3 on PATH may be a pyenv wrapper that starts slowly.
export const PYTHON = interpreter('python3', ['-c', 'import sys; print(sys.executable)']);
export const PERL = interpreter('perl', ['-e', 'print $^X']);
// Debian's Essential perl-base keeps its modules in one folder: a perl that sees only
// that folder proves a program needs nothing more.
export const PERL_BASE = interpreter('perl', ['-e', 'print grep { m{/perl-base$} } @INC']);

const pyenv = join(process.env.PYENV_ROOT ?? join(homedir(), '.pyenv'), 'versions');
/** A python that pyenv keeps, by version prefix ('3.6.'), when there is one. */
export function pyenvBin(prefix: string, exe: string): string | undefined {
  const v = existsSync(pyenv) ? readdirSync(pyenv).find((d) => d.startsWith(prefix)) : undefined;
  return v && existsSync(join(pyenv, v, 'bin', exe)) ? join(pyenv, v, 'bin', exe) : undefined;
}

export interface RuntimeVariant {
  label: string;
  runtime: 'python3' | 'perl';
  path: string;
  /** Perl code run before the bootstrap (a wrapper script instead of a plain link). */
  prelude?: string;
}

/**
 * Each runtime this machine has: python3, perl, python 3.6 (the oldest
 * supported, where pyenv keeps one) and perl limited to perl-base's modules.
 */
export const runtimeVariants: RuntimeVariant[] = (
  [
    { label: 'python3', runtime: 'python3', path: PYTHON },
    { label: 'perl', runtime: 'perl', path: PERL },
    { label: 'python 3.6', runtime: 'python3', path: pyenvBin('3.6.', 'python3.6') },
    {
      label: 'perl with perl-base modules only',
      runtime: 'perl',
      path: PERL_BASE && PERL,
      prelude: `BEGIN { @INC = ("${PERL_BASE}") }`,
    },
  ] as (Omit<RuntimeVariant, 'path'> & { path: string | undefined })[]
).filter((v): v is RuntimeVariant => v.path !== undefined && existsSync(v.path));

/** Puts `v`'s interpreter in `bin` under its runtime's name, so a PATH starting with `bin` finds it first. */
export function installRuntime(bin: string, v: RuntimeVariant): void {
  // `-e BOOT -- ARGS` becomes `-e PRELUDE -e BOOT -- ARGS`; flag wx: never write through a link
  const wrapper = `#!/bin/sh\nb=$2; shift 2\nexec ${v.path} -e '${v.prelude};' -e "$b" "$@"\n`;
  if (v.prelude) writeFileSync(join(bin, v.runtime), wrapper, { mode: 0o755, flag: 'wx' });
  else symlinkSync(v.path, join(bin, v.runtime));
}

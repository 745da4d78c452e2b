// Finding a program on PATH without running it.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Whether a program is on PATH, without running anything. */
export function findOnPath(program: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** A program given as a path (it has a `/`) when it is an executable file, else found on PATH as a name. */
export function findProgram(program: string, path: string | undefined): string | undefined {
  if (!program.includes('/')) return findOnPath(program, path);
  try {
    accessSync(program, constants.X_OK);
    return statSync(program).isFile() ? program : undefined;
  } catch {
    return undefined;
  }
}

// What every command gets: its parsed command line and the process's streams and
// environment. Its own module, so commands never import main.ts (which imports them).
import type { Io } from './io.js';

export interface CommandContext {
  io: Io;
  files: string[];
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  rest: string[];
  /** --debug or MOSHCTL_DEBUG=1: stacks with errors, each remote command, step timings. */
  debug: boolean;
}

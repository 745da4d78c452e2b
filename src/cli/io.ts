// What a command may touch of the process, passed in so command tests run in-process.
import { writeSync } from 'node:fs';

export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Whether stdin is a terminal: mosh-client needs one. */
  stdinIsTTY: boolean;
}

// process.stdout, process.stderr and process.stdin are streams made on first use, and
// making one (or loading node:tty) loads node:net: about 3 ms of `moshctl --version`'s
// ~55 ms (measured). So output is written to the descriptors, and stdin is looked at
// only by a command that asks (a getter: copy an Io with withEnv, not with a spread).
export const processIo = (): Io => ({
  stdout: writer(1, () => process.stdout),
  stderr: writer(2, () => process.stderr),
  env: process.env,
  cwd: process.cwd(),
  get stdinIsTTY() {
    return process.stdin.isTTY === true;
  },
});

/** The same Io with another environment; getters stay getters. */
export function withEnv(io: Io, env: Io['env']): Io {
  return Object.defineProperties(
    {},
    { ...Object.getOwnPropertyDescriptors(io), env: { value: env, enumerable: true } },
  ) as Io;
}

/**
 * Writes to the file descriptor itself, as the stream would (writes to pipes,
 * files and terminals are synchronous in Node on Linux). A descriptor made
 * non-blocking (by a stream made since, or by whoever shares it) may refuse
 * with EAGAIN: the rest of that text, and every later one, go through the
 * stream, which waits, so nothing is lost or reordered.
 */
function writer(fd: number, stream: () => NodeJS.WriteStream): (text: string) => void {
  let streamed = false;
  return (text) => {
    if (streamed) {
      stream().write(text);
      return;
    }
    const bytes = Buffer.from(text);
    let done = 0;
    try {
      while (done < bytes.length) done += writeSync(fd, bytes, done);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      streamed = true;
      stream().write(bytes.subarray(done));
    }
  };
}

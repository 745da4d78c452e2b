// Login prompts on the controlling terminal (/dev/tty), not stdin/stdout:
// they work while stdout is piped, and nothing typed goes through moshctl's
// output streams, so a password or one-time code is never echoed nor logged.
import { closeSync, openSync, writeSync } from 'node:fs';
import { ReadStream, WriteStream } from 'node:tty';
import { Interrupted } from '../errors.js';
import type { Prompter } from '../transport/types.js';

export function terminalPrompter(): Prompter {
  let fd: number | undefined;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    fd = undefined;
  }
  if (fd !== undefined) closeSync(fd);
  const interactive = fd !== undefined;
  // One prompt at a time: hops are dialled in order, but keep two asks from interleaving.
  let queue: Promise<unknown> = Promise.resolve();
  return {
    interactive,
    say: (text) => {
      if (!interactive) return;
      const tty = openSync('/dev/tty', 'w');
      try {
        writeSync(tty, `${text}\n`);
      } finally {
        closeSync(tty);
      }
    },
    ask: (prompt, echo, signal) => {
      const next = queue.then(() =>
        interactive ? read(prompt, echo, signal) : Promise.reject(new Error('no terminal to ask on')),
      );
      queue = next.catch(() => undefined);
      return next;
    },
  };
}

/** Reads one line in raw mode, so nothing typed is echoed unless `echo`; Ctrl-C interrupts, and so does `signal`. */
function read(prompt: string, echo: boolean, signal: AbortSignal | undefined): Promise<string> {
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  const fd = openSync('/dev/tty', 'r+');
  const input = new ReadStream(fd);
  const output = new WriteStream(fd);
  output.write(prompt);
  input.setRawMode(true);
  return new Promise<string>((resolve, reject) => {
    let line = '';
    const done = (err?: Error): void => {
      signal?.removeEventListener('abort', onAbort);
      input.setRawMode(false);
      input.removeAllListeners('data');
      output.write('\r\n');
      // Destroying the stream closes the fd it owns.
      input.destroy();
      if (err) reject(err);
      else resolve(line);
    };
    // The terminal is given back as after Enter; the open read must not keep moshctl alive.
    const onAbort = (): void => done(abortReason(signal as AbortSignal));
    signal?.addEventListener('abort', onAbort, { once: true });
    input.on('data', (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') {
          // Raw mode swallows the terminal's SIGINT: raise it, so Ctrl-C at a prompt ends `up` like Ctrl-C anywhere.
          done(new Interrupted('SIGINT'));
          process.kill(process.pid, 'SIGINT');
          return;
        }
        if (ch === '\u0004' && line === '') return done(new Error('input closed'));
        if (ch === '\u007f' || ch === '\b') {
          if (line.length > 0) {
            line = line.slice(0, -1);
            if (echo) output.write('\b \b');
          }
          continue;
        }
        if (ch < ' ') continue;
        line += ch;
        if (echo) output.write(ch);
      }
    });
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error('the prompt was cancelled', { cause: reason });
}

// The ByteChannel both ssh clients hand out: a thin adapter over a pair of
// streams (ssh2's channel, or an OpenSSH mux client's stdio).
import type { Readable, Writable } from 'node:stream';
import type { ByteChannel } from './types.js';

const STDERR_KEEP = 4096;

export function byteChannel(
  stdin: Writable,
  stdout: Readable,
  stderr: Readable | null,
): ByteChannel & {
  /** Called by the owner when the command or its channel is gone. */
  finish: () => void;
} {
  let err = '';
  let isClosed = false;
  let finish!: () => void;
  const closed = new Promise<void>((resolve) => (finish = resolve));
  stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString('utf8')).slice(-STDERR_KEEP);
  });
  stdin.on('error', () => undefined);
  return {
    write: (data) => {
      if (!isClosed) stdin.write(data);
    },
    onData: (cb) => {
      stdout.on('data', (d: Buffer | string) => cb(typeof d === 'string' ? Buffer.from(d) : d));
    },
    end: () => {
      if (!isClosed) stdin.end();
    },
    closed,
    get isClosed() {
      return isClosed;
    },
    stderr: () => err,
    finish: () => {
      isClosed = true;
      finish();
    },
  };
}

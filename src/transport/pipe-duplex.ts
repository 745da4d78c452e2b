// One Duplex over a pair of one-way streams (a child's stdout and stdin), for
// a connection whose bytes go through a process's pipes: what an OpenSSH
// stdio forward hands out, so callers get the same stream shape as ssh2's
// channel. Half-open: ending our side (EOF to the far end) leaves theirs
// readable until they end it.

import { Duplex, type Readable, type Writable } from 'node:stream';

export function pipeDuplex(readable: Readable, writable: Writable, onDestroy?: () => void): Duplex {
  const duplex = new Duplex({
    allowHalfOpen: true,
    read() {
      readable.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      if (writable.write(chunk)) done();
      else writable.once('drain', () => done());
    },
    final(done) {
      writable.end(() => done());
    },
    destroy(err, done) {
      readable.destroy();
      writable.destroy();
      onDestroy?.();
      done(err);
    },
  });
  readable.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) readable.pause();
  });
  readable.once('end', () => duplex.push(null));
  readable.on('error', (err) => duplex.destroy(err));
  writable.on('error', (err) => duplex.destroy(err));
  return duplex;
}

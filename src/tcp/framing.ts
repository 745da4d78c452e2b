// Datagrams over a byte stream: the tcp transport carries mosh's UDP datagrams
// inside an ssh channel, each one as a frame, a 2-byte big-endian length and then
// the payload. Pure: no I/O. runtime/forwarder.py and forwarder.pl, at the other
// end of the channel, speak exactly this framing.
//
// A stream has no datagram boundaries of its own: ssh may cut it anywhere, so the
// decoder keeps what it has until a whole frame is there. Length 0 is reserved and,
// like a length above MAX_DATAGRAM, means the stream is out of step; nothing after
// such a length can be trusted, so the decoder refuses everything from then on.

/** The largest UDP payload over IPv4 (65535 - 20 - 8); mosh's datagrams are far smaller. */
export const MAX_DATAGRAM = 65507;
export const HEADER_BYTES = 2;

/** The byte stream is not a frame stream (any more): it cannot be resynchronised. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
}

export function encodeFrame(datagram: Uint8Array): Buffer {
  const size = datagram.length;
  if (size < 1 || size > MAX_DATAGRAM)
    throw new RangeError(`a framed datagram must be 1-${MAX_DATAGRAM} bytes, not ${size}`);
  const frame = Buffer.allocUnsafe(HEADER_BYTES + size);
  frame.writeUInt16BE(size, 0);
  frame.set(datagram, HEADER_BYTES);
  return frame;
}

/** Several frames as one write: fewer, larger writes into the channel. */
export function encodeFrames(datagrams: readonly Uint8Array[]): Buffer {
  return Buffer.concat(datagrams.map(encodeFrame));
}

export class FrameDecoder {
  // Chunks not yet consumed, the first possibly already partly consumed (a view).
  // A list, not one growing buffer: a big frame arriving in many small chunks is
  // joined once, when it is complete, not once per chunk.
  private chunks: Buffer[] = [];
  private held = 0;
  /** Bytes of the stream consumed so far: where a bad length sat, for the error. */
  private consumed = 0;
  private failure: FrameError | undefined;

  /** Bytes held that do not make a whole frame yet (non-zero at EOF: a cut-off frame). */
  get buffered(): number {
    return this.held;
  }

  /**
   * The datagrams that `chunk` completes, in order; each a fresh Buffer (no memory shared
   * with the chunks). Throws FrameError on a bad length, and again on every later push.
   */
  push(chunk: Uint8Array): Buffer[] {
    if (this.failure) throw this.failure;
    const datagrams: Buffer[] = [];
    if (chunk.length === 0) return datagrams;
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.held += chunk.length;
    while (this.held >= HEADER_BYTES) {
      const size = this.peekLength();
      if (size < 1 || size > MAX_DATAGRAM) {
        this.failure = new FrameError(
          `the frame stream is out of step: length ${size} at byte ${this.consumed} ` +
            `(a frame holds 1-${MAX_DATAGRAM} bytes); something other than the forwarder wrote into the channel`,
        );
        this.chunks = [];
        throw this.failure;
      }
      if (this.held < HEADER_BYTES + size) break;
      datagrams.push(this.take(HEADER_BYTES + size).subarray(HEADER_BYTES));
    }
    return datagrams;
  }

  private peekLength(): number {
    const first = this.chunks[0]!;
    // Empty chunks are never kept, so a one-byte first chunk has a second one behind it.
    const second = first.length >= 2 ? first[1]! : this.chunks[1]![0]!;
    return (first[0]! << 8) | second;
  }

  /** The next n bytes (n <= held) as a Buffer of their own. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let taken: Buffer;
    if (first.length >= n) {
      taken = Buffer.from(first.subarray(0, n));
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks, this.held);
      taken = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.held -= n;
    this.consumed += n;
    return taken;
  }
}

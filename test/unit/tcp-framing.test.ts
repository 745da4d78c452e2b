// framing.ts and output.ts: datagrams through a byte stream that may be cut anywhere.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameError, MAX_DATAGRAM, encodeFrame, encodeFrames } from '../../src/tcp/framing.js';
import { ForwarderOutput } from '../../src/tcp/output.js';

/** `stream` cut at the given points (any order, duplicates allowed: empty chunks too). */
function cut(stream: Buffer, points: number[]): Buffer[] {
  const at = [0, ...points.map((p) => p % (stream.length + 1)).sort((a, b) => a - b), stream.length];
  return at.slice(1).map((end, i) => stream.subarray(at[i], end));
}

/** Datagrams as hex: vitest compares long strings far faster than long Buffers. */
const hex = (ds: readonly Uint8Array[]) => ds.map((d) => Buffer.from(d).toString('hex'));

const datagram = fc.uint8Array({ minLength: 1, maxLength: 1500 });
// Mostly mosh-sized, now and then one near the limit, to cross many chunks.
const datagrams = fc.array(
  fc.oneof(
    { arbitrary: datagram, weight: 20 },
    { arbitrary: fc.uint8Array({ minLength: 60000, maxLength: MAX_DATAGRAM }), weight: 1 },
  ),
  { maxLength: 40 },
);

describe('encodeFrame', () => {
  it('puts a 2-byte big-endian length before the payload', () => {
    expect(encodeFrame(Buffer.from('hi'))).toEqual(Buffer.from([0, 2, 0x68, 0x69]));
    const big = encodeFrame(Buffer.alloc(MAX_DATAGRAM, 1));
    expect(big.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xe3]));
    expect(big.length).toBe(MAX_DATAGRAM + 2);
    expect(encodeFrames([Buffer.from('a'), Buffer.from('bc')])).toEqual(
      Buffer.from([0, 1, 97, 0, 2, 98, 99]),
    );
  });

  it('refuses an empty datagram and one over 65507 bytes', () => {
    expect(() => encodeFrame(Buffer.alloc(0))).toThrow(RangeError);
    expect(() => encodeFrame(Buffer.alloc(MAX_DATAGRAM + 1))).toThrow('1-65507 bytes, not 65508');
  });
});

describe('FrameDecoder', () => {
  it('gives back every datagram, in order, however the stream is cut', () => {
    fc.assert(
      fc.property(datagrams, fc.array(fc.nat(), { maxLength: 60 }), (sent, points) => {
        const decoder = new FrameDecoder();
        const got = cut(encodeFrames(sent), points).flatMap((chunk) => decoder.push(chunk));
        expect(hex(got)).toEqual(hex(sent));
        expect(decoder.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('survives a stream fed one byte at a time, header bytes included', () => {
    const sent = [Buffer.from('a'), Buffer.alloc(300, 7), Buffer.from('xyz')];
    const decoder = new FrameDecoder();
    const stream = encodeFrames(sent);
    const got: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) {
      got.push(...decoder.push(stream.subarray(i, i + 1)));
      if (i === 0) expect(decoder.buffered).toBe(1); // half a header: nothing yet
    }
    expect(got).toEqual(sent);
  });

  it('returns copies: changing a pushed chunk afterwards changes no datagram', () => {
    const decoder = new FrameDecoder();
    const chunk = encodeFrames([Buffer.from('abc'), Buffer.from('de')]);
    const [first, second] = decoder.push(chunk);
    chunk.fill(0);
    expect([first?.toString(), second?.toString()]).toEqual(['abc', 'de']);
  });

  it('keeps a cut-off frame as buffered bytes (what EOF leaves behind)', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(encodeFrame(Buffer.alloc(100)).subarray(0, 50))).toEqual([]);
    expect(decoder.buffered).toBe(50);
  });

  it.each([
    [[0, 0], 0],
    [[0xff, 0xe4], 65508],
    [[0xff, 0xff], 65535],
  ])('refuses the length bytes %j (%i), then everything after', (bytes, length) => {
    const decoder = new FrameDecoder();
    expect(decoder.push(encodeFrame(Buffer.from('ok')))).toHaveLength(1);
    const bad = Buffer.from([...bytes, 1, 2, 3]);
    expect(() => decoder.push(bad)).toThrow(FrameError);
    expect(() => decoder.push(bad)).toThrow(`length ${length} at byte 4`);
    expect(() => decoder.push(encodeFrame(Buffer.from('fine')))).toThrow(FrameError);
  });

  it('finds a bad length whose two bytes arrive in different chunks', () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(Buffer.from([0]))).toEqual([]);
    expect(() => decoder.push(Buffer.from([0]))).toThrow('length 0 at byte 0');
  });
});

describe('ForwarderOutput', () => {
  const READY = 'MOSHCTL-FWD READY PID 4242 RUNTIME perl\n';

  it('reads the READY line, then frames from the very next byte, however the stream is cut', () => {
    fc.assert(
      fc.property(datagrams, fc.array(fc.nat(), { maxLength: 30 }), (sent, points) => {
        const out = new ForwarderOutput();
        const stream = Buffer.concat([Buffer.from(READY), encodeFrames(sent)]);
        const steps = cut(stream, points).map((chunk) => out.push(chunk));
        expect(steps.filter((s) => s.ready)).toEqual([
          expect.objectContaining({ ready: { pid: 4242, runtime: 'perl' } }),
        ]);
        expect(hex(steps.flatMap((s) => s.datagrams))).toEqual(hex(sent));
        expect(out.started).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('passes on an ERROR line', () => {
    const out = new ForwarderOutput();
    expect(out.push(Buffer.from('MOSHCTL-FWD ERROR --to: bad port\n'))).toEqual({
      ready: { error: '--to: bad port' },
      datagrams: [],
    });
  });

  it('refuses a first line that is not the forwarder speaking, and one that never ends', () => {
    expect(() => new ForwarderOutput().push(Buffer.from('Welcome to bastion!\n'))).toThrow(
      /first line is not READY or ERROR: "Welcome to bastion!"; a login script/,
    );
    const out = new ForwarderOutput();
    expect(out.push(Buffer.alloc(1000, 0x41))).toEqual({ datagrams: [] });
    expect(() => out.push(Buffer.alloc(100, 0x41))).toThrow(FrameError);
  });
});

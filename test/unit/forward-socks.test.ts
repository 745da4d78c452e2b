// The SOCKS server parser: each version's requests as clients send them, the
// failures with the reply each must get, and the same outcome however the
// byte stream is cut into pieces (a client's writes, TCP segments).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ipv6Text,
  replyCodeFor,
  SocksHandshake,
  socksReply,
  type SocksStep,
} from '../../src/forward/socks.js';

const b = (...parts: (number[] | string | Buffer)[]): Buffer =>
  Buffer.concat(
    parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p as number[]))),
  );

/** Feeds `pieces` in order; returns the last step and every byte to send on the way. */
function feed(pieces: Buffer[]): { step: SocksStep; sent: Buffer } {
  const hs = new SocksHandshake();
  const sent: Buffer[] = [];
  let step: SocksStep = { kind: 'more' };
  for (const p of pieces) {
    step = hs.push(p);
    if (step.send) sent.push(step.send);
    if (step.kind !== 'more') break;
  }
  return { step, sent: Buffer.concat(sent) };
}

const socks4 = b([4, 1, 0x1f, 0x90, 192, 0, 2, 7], 'alice', [0]);
const socks4a = b([4, 1, 0, 80, 0, 0, 0, 1], [0], 'web.example', [0]);
const socks5Name = b([5, 2, 2, 0], [5, 1, 0, 3, 11], 'web.example', [0, 80]);
const socks5V4 = b([5, 1, 0], [5, 1, 0, 1, 198, 51, 100, 7, 0x01, 0xbb]);
const socks5V6 = b([5, 1, 0], [5, 1, 0, 4, 0x20, 0x01, 0x0d, 0xb8, ...Array<number>(11).fill(0), 1, 0, 22]);

const cases: [string, Buffer, SocksStep][] = [
  [
    'SOCKS4',
    socks4,
    { kind: 'request', request: { version: '4', host: '192.0.2.7', port: 8080 }, rest: b() },
  ],
  [
    'SOCKS4a',
    socks4a,
    { kind: 'request', request: { version: '4a', host: 'web.example', port: 80 }, rest: b() },
  ],
  [
    'SOCKS5 with a name',
    socks5Name,
    { kind: 'request', request: { version: '5', host: 'web.example', port: 80 }, send: b([5, 0]), rest: b() },
  ],
  [
    'SOCKS5 IPv4',
    socks5V4,
    {
      kind: 'request',
      request: { version: '5', host: '198.51.100.7', port: 443 },
      send: b([5, 0]),
      rest: b(),
    },
  ],
  [
    'SOCKS5 IPv6',
    socks5V6,
    { kind: 'request', request: { version: '5', host: '2001:db8::1', port: 22 }, send: b([5, 0]), rest: b() },
  ],
  [
    'SOCKS5 BIND',
    b([5, 1, 0], [5, 2, 0, 1, 127, 0, 0, 1, 0, 80]),
    {
      kind: 'fail',
      send: b([5, 0], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]),
      reason: expect.stringContaining('BIND') as string,
    },
  ],
  [
    'SOCKS5 UDP ASSOCIATE',
    b([5, 1, 0], [5, 3, 0, 1, 0, 0, 0, 0, 0, 0]),
    {
      kind: 'fail',
      send: b([5, 0], [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]),
      reason: expect.stringContaining('UDP ASSOCIATE') as string,
    },
  ],
  [
    'SOCKS5 with authentication only',
    b([5, 1, 2]),
    { kind: 'fail', send: b([5, 0xff]), reason: expect.stringContaining('no method') as string },
  ],
  [
    'SOCKS5 address type 9',
    b([5, 1, 0], [5, 1, 0, 9, 1, 2]),
    {
      kind: 'fail',
      send: b([5, 0], [5, 8, 0, 1, 0, 0, 0, 0, 0, 0]),
      reason: expect.stringContaining('type 9') as string,
    },
  ],
  [
    'SOCKS5 empty name',
    b([5, 1, 0], [5, 1, 0, 3, 0, 0, 80]),
    {
      kind: 'fail',
      send: b([5, 0], [5, 4, 0, 1, 0, 0, 0, 0, 0, 0]),
      reason: expect.stringContaining('name') as string,
    },
  ],
  [
    'SOCKS4 BIND',
    b([4, 2, 0, 80, 192, 0, 2, 7], [0]),
    { kind: 'fail', send: b([0, 0x5b, 0, 0, 0, 0, 0, 0]), reason: expect.stringContaining('BIND') as string },
  ],
  [
    'SOCKS4a name with a space',
    b([4, 1, 0, 80, 0, 0, 0, 9], [0], 'a b', [0]),
    { kind: 'fail', send: b([0, 0x5b, 0, 0, 0, 0, 0, 0]), reason: expect.stringContaining('name') as string },
  ],
  [
    'not SOCKS (an HTTP proxy request)',
    b('GET / HTTP/1.1\r\n'),
    { kind: 'fail', reason: expect.any(String) as string },
  ],
];

describe('SocksHandshake', () => {
  it.each(cases)('%s in one piece', (_name, bytes, expected) => {
    const hs = new SocksHandshake();
    expect(hs.push(bytes)).toEqual(expected);
  });

  it.each(cases)(
    '%s cut at every pair of points gives the same bytes and outcome',
    (_name, bytes, expected) => {
      const whole = feed([bytes]);
      for (let i = 0; i <= bytes.length; i++) {
        for (let j = i; j <= bytes.length; j++) {
          const split = feed([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
          // What is sent at each step depends on the cuts; all of it together may not.
          const { send: _a, ...step } = split.step;
          const { send: _b, ...wanted } = expected;
          expect(step).toEqual(wanted);
          expect(split.sent).toEqual(whole.sent);
        }
      }
    },
  );

  it('hands over what the client sent after its request (early data)', () => {
    const step = new SocksHandshake().push(b(socks5Name, 'GET / HTTP/1.0\r\n\r\n'));
    expect(step).toMatchObject({ kind: 'request', rest: b('GET / HTTP/1.0\r\n\r\n') });
  });

  it('any request cut into any pieces: same request, same replies, same early data', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,40}$/);
    const request = fc.oneof(
      fc.record({ v: fc.constant<'4a'>('4a'), name, port: fc.integer({ min: 1, max: 65535 }) }),
      fc.record({ v: fc.constant<'5'>('5'), name, port: fc.integer({ min: 1, max: 65535 }) }),
    );
    const bytesOf = (r: { v: '4a' | '5'; name: string; port: number }): Buffer => {
      const port = [r.port >> 8, r.port & 0xff];
      return r.v === '4a'
        ? b([4, 1, ...port, 0, 0, 0, 1], 'user', [0], r.name, [0])
        : b([5, 1, 0], [5, 1, 0, 3, r.name.length], r.name, port);
    };
    fc.assert(
      fc.property(request, fc.uint8Array({ maxLength: 20 }), fc.array(fc.nat()), (r, early, cuts) => {
        const bytes = Buffer.concat([bytesOf(r), Buffer.from(early)]);
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
        const pieces = [0, ...points].map((p, i, all) => bytes.subarray(p, all[i + 1] ?? bytes.length));
        const { step, sent } = feed(pieces);
        expect(step).toMatchObject({
          kind: 'request',
          request: { host: r.name, port: r.port, version: r.v },
        });
        expect(sent).toEqual(r.v === '5' ? b([5, 0]) : b());
        // Early data cut into pieces comes in the later pieces too, so only what came with the request is checked.
        if (step.kind === 'request')
          expect(Buffer.from(early).subarray(0, step.rest.length)).toEqual(step.rest);
      }),
    );
  });

  it('refuses to be fed after it ended (a bug in the caller)', () => {
    const hs = new SocksHandshake();
    hs.push(socks4);
    expect(() => hs.push(b([0]))).toThrow(/bug/);
  });
});

describe('replies', () => {
  it('are as ssh sends them: bound address 0.0.0.0:0', () => {
    expect(socksReply('5', 0)).toEqual(b([5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    expect(socksReply('5', 5)).toEqual(b([5, 5, 0, 1, 0, 0, 0, 0, 0, 0]));
    expect(socksReply('4a', 0)).toEqual(b([0, 0x5a, 0, 0, 0, 0, 0, 0]));
    expect(socksReply('4', 4)).toEqual(b([0, 0x5b, 0, 0, 0, 0, 0, 0]));
  });

  it.each([
    ['connect failed: Connection refused', 5],
    ['open failed: administratively prohibited', 2],
    ['connect to web.example:80: Name or service not known', 4],
    ['connect failed: No route to host', 4],
    ['connect failed: Network is unreachable', 3],
    ['no answer within 15 s', 1],
  ])('%s → %i', (message, code) => {
    expect(replyCodeFor(message)).toBe(code);
  });
});

describe('ipv6Text', () => {
  it.each([
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1'],
    ['0000:0000:0000:0000:0000:0000:0000:0000', '::'],
    ['2001:0db8:0000:0001:0000:0000:0000:0001', '2001:db8:0:1::1'],
    ['2001:0db8:0001:0002:0003:0004:0005:0006', '2001:db8:1:2:3:4:5:6'],
    ['2001:0db8:0000:0001:0002:0003:0004:0005', '2001:db8:0:1:2:3:4:5'],
    ['fe80:0000:0000:0001:0000:0000:0000:0000', 'fe80:0:0:1::'],
  ])('%s → %s', (full, text) => {
    expect(ipv6Text(Buffer.from(full.replaceAll(':', ''), 'hex'))).toBe(text);
  });
});

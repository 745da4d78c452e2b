// The server side of SOCKS (4, 4a and 5) for -D, as ssh's dynamic forward
// speaks it: no authentication, CONNECT only. Pure: bytes in, what to answer
// out; the listener (execute/forward/local.ts) does the I/O. Names are passed on unresolved:
// the target's sshd resolves them, as with `ssh -D` and `curl --socks5-hostname`.
//
// No npm package was taken for this: the server-side ones in the registry
// (socksv5 and its forks, @pondwader/socks5-server) own the listening socket,
// speak SOCKS5 only and are long unmaintained; this parser is small.

export type SocksVersion = '4' | '4a' | '5';

export interface SocksRequest {
  version: SocksVersion;
  /** An IPv4 or IPv6 literal, or a name to be resolved at the target. */
  host: string;
  port: number;
}

/** What to do after a piece of the handshake arrived. */
export type SocksStep =
  /** Wait for more bytes; send `send` first when present (SOCKS5's method choice). */
  | { kind: 'more'; send?: Buffer }
  /** The client asked to connect; `rest` is what it sent after the request (early data, kept for the stream). */
  | { kind: 'request'; request: SocksRequest; send?: Buffer; rest: Buffer }
  /** Send `send` (when present), then close. */
  | { kind: 'fail'; send?: Buffer; reason: string };

/** SOCKS5 reply codes (RFC 1928 section 6); SOCKS4 knows only granted (0x5a) and failed (0x5b). */
export const SocksReply = {
  succeeded: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  connectionRefused: 5,
  ttlExpired: 6,
  commandNotSupported: 7,
  addressTypeNotSupported: 8,
} as const;
export type SocksReplyCode = (typeof SocksReply)[keyof typeof SocksReply];

/** OpenSSH's channels.c takes user ids and names up to this; a DNS name is at most 253. */
const MAX_STRING = 255;

/**
 * The reply to a CONNECT. The bound address is 0.0.0.0:0, as ssh sends: the
 * real one is on the target and means nothing to the client.
 */
export function socksReply(version: SocksVersion, code: SocksReplyCode): Buffer {
  if (version === '5') return Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.from([0, code === SocksReply.succeeded ? 0x5a : 0x5b, 0, 0, 0, 0, 0, 0]);
}

/**
 * The SOCKS5 reply code for why the target's sshd did not connect (a
 * rejection of openConnection: sshd passes on strerror or gai_strerror).
 */
export function replyCodeFor(message: string): SocksReplyCode {
  if (/prohibited|not allowed|denied/i.test(message)) return SocksReply.notAllowed;
  if (/refused/i.test(message)) return SocksReply.connectionRefused;
  if (/network is unreachable/i.test(message)) return SocksReply.networkUnreachable;
  if (/unreachable|no route|not known|resolve|no address/i.test(message)) return SocksReply.hostUnreachable;
  return SocksReply.generalFailure;
}

/**
 * One client's handshake, fed as bytes arrive in any pieces. Each push
 * returns only what is new to send, so the bytes sent over all pushes are
 * the same however the stream was split.
 */
export class SocksHandshake {
  private buf = Buffer.alloc(0);
  /** SOCKS5: the method choice was sent and the request comes next. */
  private greeted = false;
  private done = false;

  push(chunk: Buffer): SocksStep {
    if (this.done) throw new Error('bug: SOCKS handshake fed after it ended');
    this.buf = Buffer.concat([this.buf, chunk]);
    const step = this.step();
    if (step.kind !== 'more') this.done = true;
    return step;
  }

  private step(): SocksStep {
    const b = this.buf;
    if (b.length === 0) return { kind: 'more' };
    if (b[0] === 4) return this.socks4();
    if (b[0] !== 5) return { kind: 'fail', reason: `not a SOCKS 4 or 5 client (first byte ${b[0]})` };
    if (this.greeted) return this.socks5Request(undefined);
    // Greeting: VER NMETHODS METHODS...
    if (b.length < 2) return { kind: 'more' };
    const n = b[1] ?? 0;
    if (b.length < 2 + n) return { kind: 'more' };
    if (!b.subarray(2, 2 + n).includes(0)) {
      return {
        kind: 'fail',
        send: Buffer.from([5, 0xff]),
        reason: 'the SOCKS5 client offered no method without authentication',
      };
    }
    this.greeted = true;
    this.buf = b.subarray(2 + n);
    return this.socks5Request(Buffer.from([5, 0]));
  }

  /** VER CMD RSV ATYP ADDR PORT; `chosen` is the method choice still to send with whatever comes. */
  private socks5Request(chosen: Buffer | undefined): SocksStep {
    const b = this.buf;
    const more: SocksStep = chosen ? { kind: 'more', send: chosen } : { kind: 'more' };
    const fail = (code: SocksReplyCode, reason: string): SocksStep => ({
      kind: 'fail',
      send: Buffer.concat([chosen ?? Buffer.alloc(0), socksReply('5', code)]),
      reason,
    });
    if (b.length < 4) return more;
    if (b[0] !== 5) return fail(SocksReply.generalFailure, `SOCKS5 request with version ${b[0]}`);
    let host: string;
    let end: number;
    switch (b[3]) {
      case 1:
        end = 4 + 4;
        if (b.length < end + 2) return more;
        host = Array.from(b.subarray(4, end)).join('.');
        break;
      case 3: {
        const len = b[4];
        if (len === undefined) return more;
        end = 5 + len;
        if (b.length < end + 2) return more;
        const name = checkName(b.subarray(5, end));
        if (name === undefined)
          return fail(SocksReply.hostUnreachable, 'SOCKS5 request with an invalid name');
        host = name;
        break;
      }
      case 4:
        end = 4 + 16;
        if (b.length < end + 2) return more;
        host = ipv6Text(b.subarray(4, end));
        break;
      default:
        return fail(SocksReply.addressTypeNotSupported, `SOCKS5 address type ${b[3]} is not supported`);
    }
    // The command is checked once the whole request is in, so the reply ends the exchange cleanly.
    if (b[1] !== 1) return fail(SocksReply.commandNotSupported, commandName(b[1]));
    const port = b.readUInt16BE(end);
    return {
      kind: 'request',
      request: { version: '5', host, port },
      ...(chosen ? { send: chosen } : {}),
      rest: Buffer.from(b.subarray(end + 2)),
    };
  }

  /** VER CMD DSTPORT DSTIP USERID NUL [HOST NUL] (the name when DSTIP is 0.0.0.x, x > 0: SOCKS4a). */
  private socks4(): SocksStep {
    const b = this.buf;
    const fail = (reason: string): SocksStep => ({ kind: 'fail', send: socksReply('4', 1), reason });
    if (b.length < 9) return { kind: 'more' };
    const userEnd = b.indexOf(0, 8);
    if (userEnd < 0) return b.length - 8 > MAX_STRING ? fail('SOCKS4 user id too long') : { kind: 'more' };
    const ip = b.subarray(4, 8);
    const port = b.readUInt16BE(2);
    let host = Array.from(ip).join('.');
    let version: SocksVersion = '4';
    let end = userEnd + 1;
    if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] !== 0) {
      const nameEnd = b.indexOf(0, end);
      if (nameEnd < 0) return b.length - end > MAX_STRING ? fail('SOCKS4a name too long') : { kind: 'more' };
      const name = checkName(b.subarray(end, nameEnd));
      if (name === undefined) return fail('SOCKS4a request with an invalid name');
      host = name;
      version = '4a';
      end = nameEnd + 1;
    }
    if (b[1] !== 1) return fail(commandName(b[1]));
    return { kind: 'request', request: { version, host, port }, rest: Buffer.from(b.subarray(end)) };
  }
}

function commandName(cmd: number | undefined): string {
  const name = cmd === 2 ? 'BIND' : cmd === 3 ? 'UDP ASSOCIATE' : `command ${cmd}`;
  return `SOCKS ${name} is not supported (CONNECT only, as ssh -D)`;
}

/** A name as sent: printable ASCII without spaces (it travels as a protocol field, but shows in status). */
function checkName(bytes: Buffer): string | undefined {
  const name = bytes.toString('latin1');
  return name.length > 0 && name.length <= MAX_STRING && /^[\x21-\x7e]+$/.test(name) ? name : undefined;
}

/** RFC 5952 text: lower case, leading zeros dropped, the longest run of two or more zero groups as `::`. */
export function ipv6Text(bytes: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

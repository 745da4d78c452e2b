// Reading this machine's end of an ssh master's connection from the kernel's
// socket tables (/proc/net/tcp and tcp6): the text as Linux writes it, each
// address word in host byte order.
import { describe, expect, it } from 'vitest';
import { localEndOf, parseSocketTable } from '../../src/openssh/local-address.js';

const HEAD =
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
// 192.0.2.10:50374 → 192.0.2.1:22 established (inode 4242); a listener; another connection to port 22.
const TCP = [
  HEAD,
  '   0: 0A0200C0:C4C6 010200C0:0016 01 00000000:00000000 02:000A6B7E 00000000     0        0 4242 2 0000000000000000 20 4 30 10 -1',
  '   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0',
  '   2: 0A0200C0:C4C8 020200C0:0016 01 00000000:00000000 02:000A6B7E 00000000     0        0 5151 2 0000000000000000 20 4 30 10 -1',
].join('\n');
// 2001:db8:2::10 → 2001:db8::1 port 22 (inode 77), and an IPv4-mapped one (inode 78).
const TCP6 = [
  HEAD,
  '   0: B80D0120000002000000000010000000:D431 B80D0120000000000000000001000000:0016 01 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 20 4 30 10 -1',
  '   1: 0000000000000000FFFF00000B0200C0:D432 0000000000000000FFFF0000010200C0:0016 01 00000000:00000000 00:00000000 00000000     0        0 78 1 0000000000000000 20 4 30 10 -1',
].join('\n');

describe('parseSocketTable', () => {
  it('reads IPv4 rows: addresses, ports, state and inode', () => {
    expect(parseSocketTable(TCP)[0]).toEqual({
      local: { address: '192.0.2.10', port: 50374 },
      remote: { address: '192.0.2.1', port: 22 },
      state: 1,
      inode: '4242',
    });
  });

  it('reads IPv6 rows, and IPv4-mapped ones as plain IPv4', () => {
    const rows = parseSocketTable(TCP6);
    expect(rows.map((r) => [r.local.address, r.remote.address, r.inode])).toEqual([
      ['2001:db8:2::10', '2001:db8::1', '77'],
      ['192.0.2.11', '192.0.2.1', '78'],
    ]);
  });

  it('skips the header and rows it cannot read', () => {
    expect(parseSocketTable(`${HEAD}\n   0: nonsense\n`)).toEqual([]);
  });
});

describe('localEndOf', () => {
  const rows = [...parseSocketTable(TCP), ...parseSocketTable(TCP6)];

  it('finds the established connection of the process to the hop, by inode, port and address', () => {
    expect(localEndOf(rows, new Set(['4242', '5151']), { address: '192.0.2.1', port: 22 })).toBe(
      '192.0.2.10',
    );
    expect(localEndOf(rows, new Set(['77']), { address: '2001:db8::1', port: 22 })).toBe('2001:db8:2::10');
  });

  it('takes the only connection to the port when the address is spelled otherwise or unknown', () => {
    expect(localEndOf(rows, new Set(['4242', '17']), { address: '2001:0db8::1', port: 22 })).toBe(
      '192.0.2.10',
    );
    expect(localEndOf(rows, new Set(['4242']), { port: 22 })).toBe('192.0.2.10');
  });

  it('says nothing when it cannot tell which, or the process has no such connection', () => {
    expect(
      localEndOf(rows, new Set(['4242', '5151']), { address: '198.51.100.1', port: 22 }),
    ).toBeUndefined();
    expect(localEndOf(rows, new Set(['17']), { port: 22 })).toBeUndefined();
    expect(localEndOf(rows, new Set(['4242']), { port: 2222 })).toBeUndefined();
  });
});

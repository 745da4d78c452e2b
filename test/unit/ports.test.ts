import { describe, expect, it } from 'vitest';
import { parsePortRange } from '../../src/config/ports.js';

describe('parsePortRange', () => {
  it.each([
    ['60000-61000', { from: 60000, to: 61000 }],
    ['60001', { from: 60001, to: 60001 }],
    [60001, { from: 60001, to: 60001 }],
    [' 1 - 65535 ', { from: 1, to: 65535 }],
    ['60000:60010', { from: 60000, to: 60010 }],
  ])('accepts %j', (input, range) => {
    expect(parsePortRange(input)).toEqual({ ok: true, range });
  });

  it.each([
    ['', 'the port range is empty'],
    [null, 'the port range is empty'],
    ['61000-60000', 'the port range 61000-60000 is reversed'],
    ['0-10', 'port 0 is outside 1-65535'],
    ['60000-70000', 'port 70000 is outside 1-65535'],
    ['high', '"high" is not a port range'],
    ['6000a', '"6000a" is not a port range'],
    ['-5', '"-5" is not a port range'],
    [true, 'the port range must be a string or number, not boolean'],
  ])('rejects %j', (input, message) => {
    expect(parsePortRange(input)).toMatchObject({ ok: false, message });
  });
});

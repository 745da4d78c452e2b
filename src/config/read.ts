// Reads a config file, refusing what cannot be a moshproxy.yaml before a YAML
// parser sees it: too large (or endless, like -f /dev/zero), not UTF-8, or
// holding characters YAML does not allow (a binary file, a NUL). Plain YAML
// goes to the fast reader; anything else to the full parser, when the file is
// small enough for it.
import { isUtf8 } from 'node:buffer';
import { closeSync, openSync, readSync } from 'node:fs';
import { UserError } from '../errors.js';
import type { Env } from './interpolate.js';
import { LIMITS } from './limits.js';
import { readPlainYaml } from './plain-yaml.js';
import { parseSource, type Source } from './source.js';

const NOT_CONFIG = 'check that this is the config file, saved as UTF-8 text';

/** One file as data with origins, or its problems. */
export function readSource(file: string, env: Env): Source {
  const text = readConfigText(file);
  const plain = readPlainYaml(file, text, env);
  if (plain.source) return plain.source;
  if (Buffer.byteLength(text) <= LIMITS.yamlBytes) return parseSource(file, text, env);
  const { message, hint, offset } = plain.stop;
  return {
    file,
    data: undefined,
    origins: new Map(),
    problems: [{ file, ...lineColumn(text.slice(0, offset)), message, hint }],
  };
}

export function readConfigText(file: string): string {
  const bytes = readBounded(file);
  if (!isUtf8(bytes)) {
    const at = badUtf8Offset(bytes);
    throw UserError.one(
      `not UTF-8 text: byte 0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')} here`,
      NOT_CONFIG,
      { file, ...lineColumn(bytes.subarray(0, at).toString('utf8')) },
    );
  }
  const text = bytes.toString('utf8');
  // YAML allows tab, line breaks and printable characters only (YAML 1.2, c-printable).
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  const bad = /[\0-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]/.exec(text);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
    throw UserError.one(
      `the control character U+${code} is not allowed in YAML`,
      `${NOT_CONFIG}; inside double quotes, write it as "\\u${code}"`,
      { file, ...lineColumn(text.slice(0, bad.index)) },
    );
  }
  return text;
}

/** At most LIMITS.bytes + 1 bytes, so a huge file or a device that never ends cannot exhaust memory. */
function readBounded(file: string): Buffer {
  const cap = LIMITS.bytes;
  const buffer = Buffer.alloc(cap + 1);
  let length = 0;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      length += n;
      if (n === 0 || length === buffer.length) break;
    }
  } catch (cause) {
    throw UserError.one(
      `cannot read ${file}: ${(cause as Error).message}`,
      'check the path and its permissions',
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (length > cap) {
    throw UserError.one(
      `the file is larger than ${cap / 1024 / 1024} MiB, too large for a moshproxy.yaml`,
      NOT_CONFIG,
      {
        file,
      },
    );
  }
  return buffer.subarray(0, length);
}

/** Where the first byte that is not UTF-8 is (isUtf8 only says whether there is one). */
function badUtf8Offset(b: Uint8Array): number {
  for (let i = 0; i < b.length;) {
    const shape = sequence(b[i] ?? 0);
    if (!shape) return i;
    const [n, lo, hi] = shape;
    for (let k = 1; k <= n; k++) {
      const next = b[i + k];
      if (next === undefined || next < (k === 1 ? lo : 0x80) || next > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n + 1;
  }
  return 0;
}

/** For a lead byte: how many bytes follow, and the range of the first (RFC 3629, table 3-7 of Unicode). */
function sequence(c: number): [number, number, number] | undefined {
  if (c < 0x80) return [0, 0, 0];
  if (c >= 0xc2 && c <= 0xdf) return [1, 0x80, 0xbf];
  if (c === 0xe0) return [2, 0xa0, 0xbf]; // no overlong forms
  if (c === 0xed) return [2, 0x80, 0x9f]; // no surrogates
  if (c >= 0xe1 && c <= 0xef) return [2, 0x80, 0xbf];
  if (c === 0xf0) return [3, 0x90, 0xbf];
  if (c >= 0xf1 && c <= 0xf3) return [3, 0x80, 0xbf];
  if (c === 0xf4) return [3, 0x80, 0x8f]; // nothing above U+10FFFF
  return undefined;
}

function lineColumn(before: string): { line: number; column: number } {
  const lines = before.split('\n');
  return { line: lines.length, column: (lines[lines.length - 1]?.length ?? 0) + 1 };
}

import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprintSha256,
  hostPatternsMatch,
  keyTypeOfBlob,
  knownHostsLine,
  knownHostsName,
  knownKeyTypes,
  knownOnlyByCertAuthority,
} from '../../src/ssh/known-hosts.js';

// Two ed25519 keys made with `ssh-keygen -t ed25519`; the fingerprints are what
// `ssh-keygen -lf` printed for them.
const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIC/vRPVIJfHTt9Xs40feZjwWVO45LpZJPyvxyd3a9WnC';
const FP_A = 'SHA256:O1EB1e3dSkrx7Pj8U24liSq+EGE4fEw33kpJKMmRC68';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAIELGKG4yhT8fbiKyvBA4Xxs3umlVQhlNUue0hGYH1eW/';
const FP_B = 'SHA256:IBmNMONBki9wx0ACEQ3dqHTE8iFGkVGVkiLHyQCGpT0';
const blobA = Buffer.from(KEY_A, 'base64');
const blobB = Buffer.from(KEY_B, 'base64');
const ED = 'ssh-ed25519';

function hashed(name: string, salt = randomBytes(20)): string {
  const mac = createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${mac}`;
}

const check = (text: string, host: string, port: number, blob = blobA, type = ED) =>
  checkHostKey([{ file: 'kh', text }], knownHostsName(host, port), type, blob);

describe('fingerprintSha256', () => {
  it('matches ssh-keygen -lf for known keys', () => {
    expect(fingerprintSha256(blobA)).toBe(FP_A);
    expect(fingerprintSha256(blobB)).toBe(FP_B);
    expect(fingerprintSha256(blobA)).not.toContain('=');
  });

  const keygen = '/usr/bin/ssh-keygen';
  it.skipIf(!existsSync(keygen))('matches ssh-keygen -lf for a freshly generated rsa key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-kh-'));
    try {
      const file = join(dir, 'k');
      execFileSync(keygen, ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'x', '-f', file]);
      const pub = readFileSync(`${file}.pub`, 'utf8').split(' ');
      const blob = Buffer.from(pub[1] ?? '', 'base64');
      const printed = execFileSync(keygen, ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1];
      expect(fingerprintSha256(blob)).toBe(printed);
      expect(keyTypeOfBlob(blob)).toBe('ssh-rsa');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('keyTypeOfBlob', () => {
  it('reads the type from the blob and rejects garbage', () => {
    expect(keyTypeOfBlob(blobA)).toBe(ED);
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBeUndefined();
    expect(keyTypeOfBlob(Buffer.from([0xff, 0xff, 0xff, 0xff, 1]))).toBeUndefined();
  });
});

describe('checkHostKey', () => {
  it('accepts a plain name, case-insensitively, and names in a comma list', () => {
    expect(check(`bastion.example.com ${ED} ${KEY_A}\n`, 'Bastion.Example.com', 22)).toEqual({
      status: 'ok',
    });
    expect(check(`a.example,10.0.0.5,b.example ${ED} ${KEY_A} comment`, '10.0.0.5', 22)).toEqual({
      status: 'ok',
    });
  });

  it('keeps port 22 and other ports apart', () => {
    const plain = `10.0.0.5 ${ED} ${KEY_A}`;
    const ported = `[10.0.0.5]:2222 ${ED} ${KEY_A}`;
    expect(check(plain, '10.0.0.5', 22)).toEqual({ status: 'ok' });
    expect(check(plain, '10.0.0.5', 2222)).toEqual({ status: 'unknown', caOnly: false });
    expect(check(ported, '10.0.0.5', 2222)).toEqual({ status: 'ok' });
    expect(check(ported, '10.0.0.5', 22)).toEqual({ status: 'unknown', caOnly: false });
    expect(knownHostsName('::1', 2200)).toBe('[::1]:2200');
  });

  it('accepts hashed entries for host and [host]:port', () => {
    expect(check(`${hashed('10.0.0.5')} ${ED} ${KEY_A}`, '10.0.0.5', 22)).toEqual({ status: 'ok' });
    expect(check(`${hashed('[10.0.0.5]:2222')} ${ED} ${KEY_A}`, '10.0.0.5', 2222)).toEqual({ status: 'ok' });
    expect(check(`${hashed('10.0.0.5')} ${ED} ${KEY_A}`, '10.0.0.5', 2222)).toEqual({
      status: 'unknown',
      caOnly: false,
    });
    expect(check(`${hashed('10.0.0.6')} ${ED} ${KEY_A}`, '10.0.0.5', 22)).toEqual({
      status: 'unknown',
      caOnly: false,
    });
    expect(check(`|1|not-base64|x ${ED} ${KEY_A}`, '10.0.0.5', 22)).toEqual({
      status: 'unknown',
      caOnly: false,
    });
  });

  it.skipIf(!existsSync('/usr/bin/ssh-keygen'))('reads a file hashed by ssh-keygen -H', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moshctl-kh-'));
    try {
      const file = join(dir, 'known_hosts');
      writeFileSync(file, `[127.0.0.1]:2222 ${ED} ${KEY_A}\nother.example ${ED} ${KEY_B}\n`);
      execFileSync('/usr/bin/ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
      const text = readFileSync(file, 'utf8');
      expect(text).not.toContain('127.0.0.1');
      expect(check(text, '127.0.0.1', 2222)).toEqual({ status: 'ok' });
      expect(check(text, 'other.example', 22, blobB)).toEqual({ status: 'ok' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('supports wildcards and negation', () => {
    const text = `*.example.com,!evil.example.com,10.0.?.5 ${ED} ${KEY_A}`;
    expect(check(text, 'bastion.example.com', 22)).toEqual({ status: 'ok' });
    expect(check(text, 'evil.example.com', 22)).toEqual({ status: 'unknown', caOnly: false });
    expect(check(text, '10.0.7.5', 22)).toEqual({ status: 'ok' });
    expect(check(text, '10.0.77.5', 22)).toEqual({ status: 'unknown', caOnly: false });
    expect(check(text, 'example.com', 22)).toEqual({ status: 'unknown', caOnly: false });
    expect(check(`[*.example.com]:2222 ${ED} ${KEY_A}`, 'a.example.com', 2222)).toEqual({ status: 'ok' });
    // A dot in a pattern is literal, not a regex wildcard.
    expect(hostPatternsMatch('10.0.0.5', '10a0b0c5')).toBe(false);
    // A negation alone never matches.
    expect(hostPatternsMatch('!evil.example.com', 'good.example.com')).toBe(false);
  });

  it('refuses a revoked key even when another line vouches for it', () => {
    const text = [`host.example ${ED} ${KEY_A}`, `@revoked * ${ED} ${KEY_A}`].join('\n');
    expect(check(text, 'host.example', 22)).toEqual({ status: 'revoked', file: 'kh', line: 2 });
    // The revocation applies to that key only.
    expect(
      check(`@revoked * ${ED} ${KEY_A}\nhost.example ${ED} ${KEY_B}`, 'host.example', 22, blobB),
    ).toEqual({
      status: 'ok',
    });
  });

  it('reports a changed key with the line that disagrees', () => {
    const text = ['# comment', '', `other ${ED} ${KEY_A}`, `host.example ${ED} ${KEY_B}`].join('\n');
    expect(check(text, 'host.example', 22)).toEqual({ status: 'changed', file: 'kh', line: 4, keyType: ED });
    // ...and one matching line is enough for ok, as with OpenSSH.
    expect(check(`${text}\nhost.example ${ED} ${KEY_A}`, 'host.example', 22)).toEqual({ status: 'ok' });
  });

  it('requires the key type of the line to match', () => {
    // Same blob recorded under another type name: not a match.
    expect(check(`host.example ssh-rsa ${KEY_A}`, 'host.example', 22)).toEqual({
      status: 'changed',
      file: 'kh',
      line: 1,
      keyType: 'ssh-rsa',
    });
  });

  it('never lets an @cert-authority line vouch for a plain key, but says the host is known through a CA; ignores unknown markers, comments and malformed lines', () => {
    const text = [
      `@cert-authority * ${ED} ${KEY_A}`,
      `@future host.example ${ED} ${KEY_A}`,
      `# host.example ${ED} ${KEY_A}`,
      'host.example',
      `host.example ${ED} not*base64`,
    ].join('\r\n');
    expect(check(text, 'host.example', 22)).toEqual({ status: 'unknown', caOnly: true });
    expect(check(text.replace('@cert-authority *', '@cert-authority other'), 'host.example', 22)).toEqual({
      status: 'unknown',
      caOnly: false,
    });
    expect(check(`@cert-authority host.example ${ED} ${KEY_B}`, 'host.example', 22)).toEqual({
      status: 'unknown',
      caOnly: true,
    });
  });

  it('tells a host known only through a CA from one with a recorded key', () => {
    const ca = `@cert-authority *.example ${ED} ${KEY_B}`;
    const files = (text: string) => [{ file: 'kh', text }];
    expect(knownOnlyByCertAuthority(files(ca), 'host.example')).toBe(true);
    expect(knownOnlyByCertAuthority(files(`${ca}\nhost.example ${ED} ${KEY_A}`), 'host.example')).toBe(false);
    expect(knownOnlyByCertAuthority(files(ca), 'host.other')).toBe(false);
  });

  it('looks keys up in every file, the user files before the global ones', () => {
    const user = { file: 'user', text: `other ${ED} ${KEY_B}\n` };
    const global = { file: 'global', text: `h ${ED} ${KEY_B}\n` };
    expect(checkHostKey([user, global], 'h', ED, blobA)).toEqual({
      status: 'changed',
      file: 'global',
      line: 1,
      keyType: ED,
    });
    expect(checkHostKey([user, global], 'h', ED, blobB)).toEqual({ status: 'ok' });
  });

  it('uses HostKeyAlias as written, without the port', () => {
    expect(knownHostsName('10.0.0.1', 2222, 'Box-Alias')).toBe('box-alias');
    expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });

  it('writes the line accept-new records, hashed or plain, so that it is found again', () => {
    for (const hashedLine of [true, false]) {
      const line = knownHostsLine('[h]:2222', ED, blobA, hashedLine);
      expect(line.startsWith('|1|')).toBe(hashedLine);
      expect(checkHostKey([{ file: 'kh', text: line }], '[h]:2222', ED, blobA)).toEqual({ status: 'ok' });
      expect(checkHostKey([{ file: 'kh', text: line }], 'h', ED, blobA)).toEqual({
        status: 'unknown',
        caOnly: false,
      });
    }
  });

  it('lists the key types known for a host', () => {
    const text = [`h ssh-rsa ${KEY_B}`, `h ${ED} ${KEY_A}`, `other ecdsa-sha2-nistp256 ${KEY_A}`].join('\n');
    expect(knownKeyTypes([{ file: 'kh', text }], 'h')).toEqual(['ssh-rsa', ED]);
    expect(knownKeyTypes([{ file: 'kh', text }], '[h]:2222')).toEqual([]);
  });
});

// OpenSSH known_hosts, checked the way `ssh -o StrictHostKeyChecking=yes`
// would: ssh2 has no verifier of its own (without one it accepts any key), so
// this module is what stands between a hop and a man in the middle. Pure: no
// I/O, so it can be tested exhaustively without an sshd.

import { createHash, createHmac, randomBytes } from 'node:crypto';

export type HostKeyVerdict =
  | { status: 'ok' }
  /** `caOnly`: no key is recorded for the host, but an @cert-authority line covers it. */
  | { status: 'unknown'; caOnly: boolean }
  /** `line` is 1-based; `keyType` is the type recorded on that line. */
  | { status: 'changed'; file: string; line: number; keyType: string }
  | { status: 'revoked'; file: string; line: number };

/** One known_hosts file's text, named for messages; user files first, as OpenSSH reads them. */
export interface KnownHostsText {
  file: string;
  text: string;
}

interface Entry {
  file: string;
  line: number;
  marker: 'revoked' | 'ca' | undefined;
  hosts: string;
  keyType: string;
  key: Buffer;
}

/**
 * The name a host is recorded under: OpenSSH writes `[host]:port` for any
 * port but 22, so a key for port 22 never vouches for another port.
 */
export function knownHostsName(host: string, port: number, alias?: string): string {
  // HostKeyAlias is used as written, without the port (as OpenSSH does).
  if (alias) return alias.toLowerCase();
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** `SHA256:<base64 without padding>`, as `ssh-keygen -lf` and ssh print it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type a wire-format public key blob declares (its first SSH string). */
export function keyTypeOfBlob(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || keyBlob.length < 4 + len) return undefined;
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

function parse(files: readonly KnownHostsText[]): Entry[] {
  const entries: Entry[] = [];
  for (const { file, text } of files) {
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const raw = (lines[i] ?? '').trim();
      if (raw === '' || raw.startsWith('#')) continue;
      const fields = raw.split(/\s+/);
      let marker: Entry['marker'];
      if (fields[0]?.startsWith('@')) {
        const m = fields.shift();
        // @cert-authority trusts a CA to sign host certificates: it never vouches
        // for a plain key nor counts as a changed one (ssh2 cannot check
        // certificates; the openssh client does). Unknown markers are skipped as OpenSSH does.
        if (m === '@revoked') marker = 'revoked';
        else if (m === '@cert-authority') marker = 'ca';
        else continue;
      }
      const [hosts, keyType, b64] = fields;
      if (hosts === undefined || keyType === undefined || b64 === undefined) continue;
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) continue;
      entries.push({ file, line: i + 1, marker, hosts, keyType, key: Buffer.from(b64, 'base64') });
    }
  }
  return entries;
}

function wildcardToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')))
    .join('');
  return new RegExp(`^${body}$`, 'i');
}

function matchesHashed(field: string, name: string): boolean {
  // |1|base64(salt)|base64(HMAC-SHA1(salt, name))
  const parts = field.split('|');
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2] ?? '', 'base64');
  const want = Buffer.from(parts[3] ?? '', 'base64');
  if (salt.length === 0 || want.length === 0) return false;
  return createHmac('sha1', salt).update(name).digest().equals(want);
}

/**
 * OpenSSH semantics: a negated pattern that matches excludes the line even if
 * a positive one matches too; a hashed field holds exactly one name.
 */
export function hostPatternsMatch(hosts: string, name: string): boolean {
  if (hosts.startsWith('|')) return matchesHashed(hosts, name);
  let positive = false;
  for (const raw of hosts.split(',')) {
    if (raw === '') continue;
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!wildcardToRegExp(pattern).test(name)) continue;
    if (negated) return false;
    positive = true;
  }
  return positive;
}

/**
 * Key types recorded for this host, so the client can offer those host key
 * algorithms first (as OpenSSH does) and not be handed a type it cannot check.
 */
export function knownKeyTypes(files: readonly KnownHostsText[], name: string): string[] {
  const types: string[] = [];
  for (const e of parse(files)) {
    if (!e.marker && !types.includes(e.keyType) && hostPatternsMatch(e.hosts, name)) types.push(e.keyType);
  }
  return types;
}

/**
 * Check the key a server presented. A key recorded for this host with the
 * same type and the same blob is `ok`; a host recorded with another key (of
 * the same or another type) is `changed`, since a server that really rotated
 * its key and a man in the middle look the same from here.
 */
export function checkHostKey(
  files: readonly KnownHostsText[],
  name: string,
  keyType: string,
  keyBlob: Buffer,
): HostKeyVerdict {
  const entries = parse(files);
  // A revoked key stays refused whatever host patterns its line names and
  // whatever other line vouches for it: "must not ever be accepted" (sshd(8)).
  const revoked = entries.find((e) => e.marker === 'revoked' && e.key.equals(keyBlob));
  if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line };

  let sameTypeOther: Entry | undefined;
  let otherType: Entry | undefined;
  for (const e of entries) {
    if (e.marker || !hostPatternsMatch(e.hosts, name)) continue;
    if (e.keyType === keyType) {
      if (e.key.equals(keyBlob)) return { status: 'ok' };
      sameTypeOther ??= e;
    } else {
      otherType ??= e;
    }
  }
  const changed = sameTypeOther ?? otherType;
  if (changed) return { status: 'changed', file: changed.file, line: changed.line, keyType: changed.keyType };
  return { status: 'unknown', caOnly: certAuthorityCovers(entries, name) };
}

/** Whether a host is known only through an @cert-authority line (its keys are certificates). */
export function knownOnlyByCertAuthority(files: readonly KnownHostsText[], name: string): boolean {
  const entries = parse(files);
  return (
    !entries.some((e) => !e.marker && hostPatternsMatch(e.hosts, name)) && certAuthorityCovers(entries, name)
  );
}

function certAuthorityCovers(entries: Entry[], name: string): boolean {
  return entries.some((e) => e.marker === 'ca' && hostPatternsMatch(e.hosts, name));
}

/**
 * The line accept-new appends for a new host, as OpenSSH writes it: the name
 * hashed (HashKnownHosts yes) or plain, the key type and the key.
 */
export function knownHostsLine(name: string, keyType: string, keyBlob: Buffer, hashed: boolean): string {
  const field = hashed ? hashName(name) : name;
  return `${field} ${keyType} ${keyBlob.toString('base64')}\n`;
}

function hashName(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

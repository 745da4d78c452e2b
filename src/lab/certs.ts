// OpenSSH certificates for a lab: a host CA that signs every sshd's host key
// (so a client can trust all lab hosts with one @cert-authority line) and a
// user CA that sshd trusts (so a key that is in no authorized_keys can still
// log in with a certificate). ed25519 keys cost milliseconds, so every lab has
// them; moshctl's ssh2 ignores host certificates and sees the plain host key.

import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustRun } from './proc.js';
import { generateKey } from './sshd.js';
import { LAB_DOMAIN } from './topology.js';

export interface LabCas {
  hostCaKey: string;
  /** "ssh-ed25519 AAAA… comment" */
  hostCaPublicKey: string;
  userCaKey: string;
  userCaPubFile: string;
}

export interface CertPaths {
  /** known_hosts with only the host CA's @cert-authority line. */
  caKnownHostsFile: string;
  /** A client key that is in no authorized_keys; its certificate is `<key>-cert.pub`. */
  certOnlyKeyFile: string;
}

export function certPaths(labDir: string): CertPaths {
  return {
    caKnownHostsFile: join(labDir, 'known_hosts.ca'),
    certOnlyKeyFile: join(labDir, 'id_cert_only'),
  };
}

/** The lab's address ranges and names, for a @cert-authority line that covers every lab host. */
export const LAB_HOST_PATTERNS = [
  `*.${LAB_DOMAIN}`,
  '192.0.2.*',
  '198.51.100.*',
  '203.0.113.*',
  '2001:db8:*',
];

export async function makeCas(labDir: string, runId: string): Promise<LabCas> {
  const dir = join(labDir, 'ca');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const hostCaKey = join(dir, 'host_ca');
  const userCaKey = join(dir, 'user_ca');
  const [hostCaPublicKey] = await Promise.all([
    generateKey(hostCaKey, `moshctl-lab-${runId}-host-ca`),
    generateKey(userCaKey, `moshctl-lab-${runId}-user-ca`),
  ]);
  return { hostCaKey, hostCaPublicKey, userCaKey, userCaPubFile: `${userCaKey}.pub` };
}

/** Signs `<hostKey>.pub` for the given names; returns the certificate's path (`<hostKey>-cert.pub`). */
export async function signHostKey(
  cas: LabCas,
  hostKey: string,
  host: string,
  principals: string[],
): Promise<string> {
  await mustRun([
    'ssh-keygen',
    '-q',
    '-s',
    cas.hostCaKey,
    '-I',
    `lab-${host}`,
    '-h',
    '-n',
    principals.join(','),
    `${hostKey}.pub`,
  ]);
  return `${hostKey}-cert.pub`;
}

/**
 * The cert-only client key and its user certificate for `principals`, valid
 * for a day (from five minutes back, so a clock step cannot make it not yet valid).
 */
export async function makeCertOnlyKey(
  cas: LabCas,
  keyFile: string,
  runId: string,
  principals: readonly string[],
): Promise<void> {
  await generateKey(keyFile, `moshctl-lab-${runId}-cert-only`);
  await mustRun([
    'ssh-keygen',
    '-q',
    '-s',
    cas.userCaKey,
    '-I',
    `lab-${runId}-cert-only`,
    '-n',
    principals.join(','),
    '-V',
    '-5m:+1d',
    `${keyFile}.pub`,
  ]);
}

export function writeCaKnownHosts(path: string, cas: LabCas): void {
  const key = cas.hostCaPublicKey.split(/\s+/).slice(0, 2).join(' ');
  writeFileSync(path, `@cert-authority ${LAB_HOST_PATTERNS.join(',')} ${key}\n`, { mode: 0o600 });
}

/** Copies a key with its .pub and -cert.pub (when there is one), as OpenSSH expects them side by side. */
export function copyKeyWithCert(from: string, to: string): void {
  copyFileSync(from, to);
  copyFileSync(`${from}.pub`, `${to}.pub`);
  if (existsSync(`${from}-cert.pub`)) copyFileSync(`${from}-cert.pub`, `${to}-cert.pub`);
}

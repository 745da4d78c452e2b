// What each hop logs in with, settled before any connection opens: a missing
// or encrypted key should fail in milliseconds, not after two hops of
// handshakes that then have to be torn down.

import { readFile, stat } from 'node:fs/promises';
import type { SshHost } from '../config/types.js';
import { EnvError } from '../errors.js';
import type { Ssh2Module } from './ssh2-module.js';

export interface HopAuth {
  privateKey: Buffer | undefined;
  agent: string | undefined;
  /** For messages: what was offered, e.g. `key /root/.ssh/id_ed25519`. */
  tried: string;
}

async function isSocket(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isSocket();
  } catch {
    return false;
  }
}

export async function prepareAuth(
  ssh2: Ssh2Module,
  host: SshHost,
  agentSock: string | undefined,
): Promise<HopAuth> {
  const agent = agentSock && (await isSocket(agentSock)) ? agentSock : undefined;
  const where = { host: host.name, step: 'connect' };
  let privateKey: Buffer | undefined;
  const tried: string[] = [];

  if (host.identity_file !== undefined) {
    const path = host.identity_file;
    let data: Buffer;
    try {
      data = await readFile(path);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      throw new EnvError(
        `cannot read identity file ${path} for ${host.name}: ${code === 'ENOENT' ? 'no such file' : (code ?? 'read failed')}`,
        code === 'ENOENT'
          ? `fix identity_file of ${host.name}, or create a key: ssh-keygen -t ed25519 -f ${path}`
          : `make ${path} readable by this user`,
        where,
        { cause },
      );
    }
    const parsed = ssh2.utils.parseKey(data);
    if (parsed instanceof Error) {
      if (/encrypted/i.test(parsed.message) && /passphrase/i.test(parsed.message)) {
        // moshctl never prompts (it may run without a terminal); an agent that
        // already holds the decrypted key is the way to use a protected key.
        if (!agent) {
          throw new EnvError(
            `identity file ${path} for ${host.name} is encrypted and no ssh-agent is running`,
            `load it into ssh-agent: eval "$(ssh-agent)" && ssh-add ${path}`,
            where,
          );
        }
        tried.push(`ssh-agent keys (${path} is encrypted, so only the agent's copy can be used)`);
      } else {
        throw new EnvError(
          `identity file ${path} for ${host.name} is not a usable private key: ${parsed.message}`,
          'use an ed25519, ecdsa or rsa key in OpenSSH or PEM format (FIDO sk- keys and certificates are not supported)',
          where,
        );
      }
    } else {
      privateKey = data;
      tried.push(`key ${path}`);
    }
  }
  if (agent && !tried.some((t) => t.startsWith('ssh-agent'))) tried.push(`ssh-agent keys (${agent})`);

  if (privateKey === undefined && agent === undefined) {
    throw new EnvError(
      `no key to log in to ${host.name} with: no identity_file and no ssh-agent${agentSock ? ` (no socket at ${agentSock})` : ' (SSH_AUTH_SOCK is not set)'}`,
      `set identity_file for ${host.name}, or start ssh-agent and ssh-add your key`,
      where,
    );
  }
  return { privateKey, agent, tried: tried.join(' and ') };
}

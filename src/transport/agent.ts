// Which ssh-agent a hop would forward, the same way for both ssh clients:
// the host's IdentityAgent, else ConnectOptions.agent, else $SSH_AUTH_SOCK
// (what ssh itself forwards with ForwardAgent yes: it exports IdentityAgent as
// SSH_AUTH_SOCK, checked with OpenSSH 9.2).
import { statSync } from 'node:fs';
import type { SshHost } from '../config/types.js';
import type { ConnectOptions } from './types.js';

export type AgentToForward = { socket: string } | { missing: string };

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** The agent socket `host` would forward, or why there is none (for the message of a channel that asks for it). */
export function agentToForward(
  host: SshHost,
  opts: Pick<ConnectOptions, 'agent'>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): AgentToForward {
  if (host.identity_agent === 'none') return { missing: `IdentityAgent is none for ${host.name}` };
  const wanted = host.identity_agent ?? ('agent' in opts ? opts.agent : env.SSH_AUTH_SOCK);
  if (!wanted || wanted === 'none') return { missing: 'no agent was given and SSH_AUTH_SOCK is not set' };
  if (!isSocket(wanted)) return { missing: `no agent socket at ${wanted}` };
  return { socket: wanted };
}

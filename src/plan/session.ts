// The tmux or screen session a host's shell is kept in (mosh.session). Its
// name comes from the host's moshctl name alone, so the next `up` of that host
// finds it again, from this machine or another.
import type { SessionKeeper } from '../config/types.js';
import type { KeptSession } from './types.js';

export function keptSession(keeper: SessionKeeper, host: string): KeptSession | undefined {
  if (keeper === 'none') return undefined;
  const name = `moshctl-${hostSlug(host)}`;
  // screen matches a -S name by prefix when no session has it exactly, so
  // moshctl-web would attach to moshctl-web2's session: a final '=', which no
  // other moshctl name has inside it, keeps every name from being another's prefix.
  return { program: keeper, name: keeper === 'screen' ? `${name}=` : name };
}

/**
 * The host's name with only letters, digits, '_' and '-', for names made from
 * it on the target (the kept session, the agent link): tmux would turn '.' and
 * ':' into '_' itself and expands `#{...}` formats in a -s name; ssh_config
 * names may carry '@', ':' or '['.
 */
export function hostSlug(host: string): string {
  return host.replace(/[^A-Za-z0-9_-]/g, '_');
}

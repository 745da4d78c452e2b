// Which ssh client carries a route: one for the whole chain, since an inner
// hop is tunnelled through the connection of the hop before it.
import type { SshHost } from '../config/types.js';

/** The user's own ssh when any host asks for it (it can do all ssh2 can), else the built-in ssh2. */
export function routeClient(route: readonly Pick<SshHost, 'ssh_client'>[]): SshHost['ssh_client'] {
  return route.some((h) => h.ssh_client === 'openssh') ? 'openssh' : 'ssh2';
}

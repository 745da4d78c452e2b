// Which ssh client carries a route: one for the whole chain, since an inner
// hop is tunnelled through the connection of the hop before it.
import { CHOSEN, type HostConfig, type SshHost } from '../config/types.js';

/** The user's own ssh when any host asks for it (it can do all ssh2 can), else the built-in ssh2. */
export function routeClient(route: readonly Pick<SshHost, 'ssh_client'>[]): SshHost['ssh_client'] {
  return route.some((h) => h.ssh_client === 'openssh') ? 'openssh' : 'ssh2';
}

/** The route's client and why, for the plan: a setting (with where), moshctl's choice, or the default. */
export function routeClientWhy(route: readonly HostConfig[]): string {
  const kind = routeClient(route);
  const chosen = route.find((h) => h.sources.ssh_client?.startsWith(`${CHOSEN}: `));
  if (chosen) return `chosen by itself: ${chosen.sources.ssh_client?.slice(CHOSEN.length + 2)}`;
  const named = route.filter((h) => h.ssh_client === kind && !h.sources.ssh_client?.startsWith('default'));
  const first = named[0];
  if (first)
    return `ssh_client: ${kind} for ${named.map((h) => h.name).join(', ')} (${first.sources.ssh_client})`;
  // Set nowhere and nothing on the route needs more (or ssh is missing: the source says so).
  const note = route.map((h) => h.sources.ssh_client).find((s) => s?.startsWith('default ('));
  return note ? `the built-in client, the ${note}` : 'the built-in client: nothing on the route needs more';
}

// Which ssh client carries a route when nothing names one. The built-in ssh2
// needs nothing installed, but cannot do everything a person's own ssh does
// (ssh/limits.ts); rather than refuse and send them to learn a setting, a
// route whose hosts need more goes through their `ssh`, which moshctl already
// runs for `ssh -G`. A route uses one client: inner hops are tunnelled
// through the connection of the hop before them.
import { CHOSEN, type HostConfig, type SshClientKind, type SshHost } from './types.js';

export interface ClientChoiceContext {
  /** Whether `ssh` is installed: without it, ssh2 is the only client there is. */
  sshInstalled: boolean;
  /**
   * What a host needs that ssh2 cannot do, found from its settings and files
   * (ssh/needs.ts); absent, nothing is chosen (the default stays).
   */
  ssh2Needs?: ((host: SshHost) => Promise<{ what: string } | undefined>) | undefined;
}

/**
 * The route's hosts with ssh_client filled in: unchanged when a moshproxy.yaml
 * host or `defaults:` names a client anywhere on the route (today's rules then
 * hold: openssh when any asks for it, and ssh2 refuses what it cannot do);
 * otherwise openssh for every host when one needs it and ssh is installed.
 */
export async function chooseClient(route: HostConfig[], ctx: ClientChoiceContext): Promise<HostConfig[]> {
  const needs = ctx.ssh2Needs;
  if (!needs || route.some((h) => h.sources.ssh_client !== 'default')) return route;
  const limits = await Promise.all(route.map((h) => needs(h)));
  const i = limits.findIndex((l) => l !== undefined);
  const limit = limits[i];
  const needy = route[i];
  if (!limit || !needy) return route;
  const why = `${needy.name} needs ${limit.what}, which the built-in ssh2 cannot do`;
  if (!ctx.sshInstalled)
    return route.map((h) => withClient(h, 'ssh2', `default (${why}, and ssh is not installed)`));
  return route.map((h) => withClient(h, 'openssh', `${CHOSEN}: ${why}`));
}

function withClient(h: HostConfig, kind: SshClientKind, source: string): HostConfig {
  return { ...h, ssh_client: kind, sources: { ...h.sources, ssh_client: source } };
}

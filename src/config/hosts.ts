// The hosts of one route, complete: moshproxy.yaml first, then ssh_config as
// OpenSSH resolves it (`ssh -G`, once per hop, in parallel), then OpenSSH's
// defaults. A name moshproxy.yaml does not declare is resolved the way
// `ssh NAME` would: its ProxyJump list becomes the chain, and the first jump's
// own ProxyJump is followed too (as ssh does).
import { lookup } from 'node:dns/promises';
import { UserError } from '../errors.js';
import { ipVersion } from '../host-port.js';
import { chooseClient, type ClientChoiceContext } from './client-choice.js';
import { filesLabel } from './discover.js';
import type { Loaded } from './load.js';
import { completeHost, type CompleteContext, type DeclaredHost } from './resolve.js';
import { parseProxyJump, parseSshG, type JumpSpec, type SshGValues } from './ssh-config.js';
import { suggest } from './suggest.js';
import type { HostConfig, ResolvedConfig } from './types.js';

/** Runs `ssh -G`; injected so unit tests need no ssh. */
export type SshG = (name: string, opts: { user?: string; port?: number }) => Promise<string>;

export interface HostsContext extends CompleteContext {
  /** undefined when ssh is not installed: moshproxy.yaml hosts then get OpenSSH's defaults only. */
  sshG: SshG | undefined;
  /** Where ssh_config comes from, for messages. */
  sshConfigLabel: string;
  /** Whether a name resolves on this machine; injected for tests. */
  resolves?: (name: string) => Promise<boolean>;
  /** What a host needs that ssh2 cannot do (ssh/needs.ts); absent, ssh_client is never chosen. */
  ssh2Needs?: ClientChoiceContext['ssh2Needs'];
}

const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9._:%-]{0,252}$/;
const USER_NAME = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$/;

/** Every host of `name`'s route, complete; `name` may be `user@host` for a host only ssh_config knows. */
export async function resolveRoute(loaded: Loaded, name: string, ctx: HostsContext): Promise<ResolvedConfig> {
  const declared = loaded.declared.host(name);
  const hosts = declared
    ? await declaredRoute(loaded, declared, ctx)
    : await sshConfigRoute(loaded, name, ctx);
  const route = await finishRoute(routeOf(hosts, name), ctx);
  return { version: 1, files: loaded.files, hosts: Object.fromEntries(route.map((h) => [h.name, h])) };
}

/** Every host of moshproxy.yaml, complete (for `config --resolved`), each as the route to it would carry it. */
export async function resolveAll(loaded: Loaded, ctx: HostsContext): Promise<ResolvedConfig> {
  const list = loaded.declared.names.flatMap((n) => loaded.declared.host(n) ?? []);
  const done = await Promise.all(list.map(async (d) => completeHost(d, await gOf(d, ctx), 'moshproxy', ctx)));
  const all = Object.fromEntries(done.map((h) => [h.name, h]));
  const finished = await Promise.all(
    done.map(async (h) => (await finishRoute(routeOf(all, h.name), ctx)).at(-1) ?? h),
  );
  return { version: 1, files: loaded.files, hosts: Object.fromEntries(finished.map((h) => [h.name, h])) };
}

/** The hosts of `name`'s route in order, client side first. */
function routeOf(hosts: Record<string, HostConfig>, name: string): HostConfig[] {
  const target = hosts[name];
  if (!target) throw new Error(`bug: route of ${name} without ${name}`);
  return [...target.chain, name].map((n) => {
    const h = hosts[n];
    if (!h) throw new Error(`bug: chain of ${name} names unknown host ${n}`);
    return h;
  });
}

/**
 * What depends on the whole route. An inner hop's own ProxyCommand is not
 * used: the hop before reaches it, as `ssh -J` would (so it asks for neither
 * openssh nor tcp). Then the ssh client, when nothing names one.
 */
async function finishRoute(route: HostConfig[], ctx: HostsContext): Promise<HostConfig[]> {
  const reached = route.map((h, i) => {
    const prev = route[i - 1];
    if (!prev || h.proxy_command === undefined) return h;
    return {
      ...h,
      proxy_command: undefined,
      sources: { ...h.sources, proxy_command: `not used: reached through ${prev.name}, as with ssh -J` },
    };
  });
  return chooseClient(reached, { sshInstalled: ctx.sshG !== undefined, ssh2Needs: ctx.ssh2Needs });
}

async function declaredRoute(
  loaded: Loaded,
  target: DeclaredHost,
  ctx: HostsContext,
): Promise<Record<string, HostConfig>> {
  const route = [...target.chain, target.name].map((n) => {
    const d = loaded.declared.host(n);
    if (!d) throw new Error(`bug: chain of ${target.name} names unknown host ${n}`);
    return d;
  });
  const done = await Promise.all(
    route.map(async (d) => completeHost(d, await gOf(d, ctx), 'moshproxy', ctx)),
  );
  return Object.fromEntries(done.map((h) => [h.name, h]));
}

/** A moshproxy.yaml host is looked up in ssh_config by its address, as `ssh ADDRESS` would be. */
async function gOf(d: DeclaredHost, ctx: HostsContext): Promise<SshGValues | undefined> {
  if (!ctx.sshG) return undefined;
  return runG(ctx, d.name, d.address, {
    ...(d.ssh.user ? { user: d.ssh.user.value } : {}),
    ...(d.ssh.port ? { port: d.ssh.port.value } : {}),
  });
}

async function runG(
  ctx: HostsContext,
  label: string,
  host: string,
  opts: { user?: string; port?: number },
): Promise<SshGValues> {
  if (!ctx.sshG) throw new Error('bug: runG without ssh');
  if (!HOST_NAME.test(host))
    throw UserError.one(`"${host}" is not a host name ssh can be given`, 'use a DNS name or an IP address', {
      file: label,
    });
  let text: string;
  try {
    text = await ctx.sshG(host, opts);
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).trim().split('\n').slice(-3).join('; ');
    throw UserError.one(
      `ssh_config could not be read for ${label} (\`ssh -G ${host}\`): ${why}`,
      `fix ${ctx.sshConfigLabel} at the line the message names`,
    );
  }
  return parseSshG(text);
}

/** A host moshproxy.yaml does not declare: ssh_config (or plain DNS) must know it. */
async function sshConfigRoute(
  loaded: Loaded,
  spec: string,
  ctx: HostsContext,
): Promise<Record<string, HostConfig>> {
  const files = filesLabel(loaded.files);
  const hasFile = loaded.files.length > 0;
  /** Where a host could be declared, for hints: the team's file, or the user's own ssh_config. */
  const declareIt = (host: string): string =>
    hasFile
      ? `declare it under hosts: in ${files}`
      : `add "Host ${host}" with its HostName (and ProxyJump, if it is behind a bastion) to ${ctx.sshConfigLabel}, or declare it in a moshproxy.yaml`;
  const parsed = parseProxyJump(spec);
  const target = Array.isArray(parsed) && parsed.length === 1 ? parsed[0] : undefined;
  const known = loaded.declared.names;
  if (
    !target ||
    !HOST_NAME.test(target.host) ||
    (target.user !== undefined && !USER_NAME.test(target.user))
  ) {
    throw UserError.one(
      `"${spec}" is not a host name`,
      hasFile ? `use a name from ${files}, or a host ssh knows` : 'use a host ssh knows',
    );
  }
  if (!ctx.sshG) {
    // Most likely a typo; ssh_config would be the other place to look, but ssh is missing.
    const guess = suggest(target.host, known);
    throw UserError.one(
      `unknown host "${spec}": ${hasFile ? `not in ${files}` : 'there is no moshproxy.yaml'} (ssh is not installed, so ssh_config was not consulted)`,
      guess
        ? `did you mean "${guess}"?`
        : `install the OpenSSH client (apt install openssh-client) to use hosts from ssh_config${hasFile ? `, or declare it under hosts: in ${files}` : ''}`,
    );
  }
  const others = loaded.declared.forOthers;
  const hostOf = (j: JumpSpec, g: SshGValues, chain: string[]): HostConfig => {
    const ssh = {
      ...others.ssh,
      ...(j.user ? { user: { value: j.user, source: 'ssh_config' } } : {}),
      ...(j.port ? { port: { value: j.port, source: 'ssh_config' } } : {}),
    };
    return completeHost(
      {
        name: j.text,
        address: j.host,
        chain,
        relay: others.relay,
        mosh: others.mosh,
        ssh,
        forward: others.forward,
        ...(others.transportSource ? { transportSource: others.transportSource } : {}),
      },
      g,
      'ssh_config',
      ctx,
    );
  };
  const lookupG = (j: JumpSpec): Promise<SshGValues> =>
    runG(ctx, j.text, j.host, { ...(j.user ? { user: j.user } : {}), ...(j.port ? { port: j.port } : {}) });

  const tg = await lookupG(target);
  if (!(await knownToSsh(target.host, tg, ctx))) {
    const guess = suggest(target.host, known);
    throw UserError.one(
      `unknown host "${spec}": ${hasFile ? `not in ${files}` : 'there is no moshproxy.yaml'}, not in ${ctx.sshConfigLabel}, and not a name this machine resolves`,
      guess
        ? `did you mean "${guess}"?`
        : known.length > 0
          ? `hosts in ${files}: ${known.join(', ')}`
          : declareIt(target.host),
    );
  }
  // ProxyJump a,b means local → a → b → target; a's own ProxyJump is how a is reached.
  const hops: { spec: JumpSpec; g: SshGValues }[] = [];
  const seen = new Set<string>([target.text]);
  let jumps = tg.proxyjump;
  let via = target.text;
  while (jumps) {
    const list = parseProxyJump(jumps);
    if (!Array.isArray(list))
      throw UserError.one(
        `ProxyJump of ${via} in ${ctx.sshConfigLabel}: ${list.error}`,
        'write ProxyJump [user@]host[:port][,...]',
      );
    for (const j of list) {
      if (loaded.declared.host(j.host)) {
        throw UserError.one(
          `${via} (from ${ctx.sshConfigLabel}) jumps through "${j.host}", which is also a host in ${files}: a chain cannot mix the two`,
          `declare ${target.host} in ${files} with via: [${j.host}], or rename one of them`,
        );
      }
      if (seen.has(j.text) || !HOST_NAME.test(j.host) || (j.user !== undefined && !USER_NAME.test(j.user))) {
        throw UserError.one(
          seen.has(j.text)
            ? `ProxyJump cycle in ${ctx.sshConfigLabel}: ${[...seen, j.text].join(' → ')}`
            : `ProxyJump of ${via}: "${j.text}" is not a usable host`,
          'a host cannot be reached through itself; fix the ProxyJump lines',
        );
      }
      seen.add(j.text);
    }
    const gs = await Promise.all(list.map(lookupG));
    hops.unshift(...list.map((spec, i) => ({ spec, g: gs[i] as SshGValues })));
    // Only the first jump's own ProxyJump counts; later hops are reached through the one before.
    jumps = gs[0]?.proxyjump;
    via = list[0]?.text ?? via;
  }
  const names = hops.map((h) => h.spec.text);
  const out: Record<string, HostConfig> = {};
  hops.forEach((h, i) => (out[h.spec.text] = hostOf(h.spec, h.g, names.slice(0, i))));
  out[target.text] = hostOf(target, tg, names);
  return out;
}

/**
 * Whether mosh's UDP could reach the first hop of `name`'s route: a hop
 * reached through a ProxyCommand (an access broker) may have no address this
 * machine resolves. Looked up only then; the planner chooses the transport from it.
 */
export async function firstHopResolves(
  config: ResolvedConfig,
  name: string,
  ctx: Pick<HostsContext, 'resolves'> = {},
): Promise<boolean | undefined> {
  const target = config.hosts[name];
  const first = target && config.hosts[target.chain[0] ?? name];
  if (first?.proxy_command === undefined) return undefined;
  return ipVersion(first.address) !== 0 || (await (ctx.resolves ?? resolvesHere)(first.address));
}

async function resolvesHere(name: string): Promise<boolean> {
  return lookup(name).then(
    () => true,
    () => false,
  );
}

/**
 * `ssh -G` answers for any name, so a typo would be tried as a DNS name. A name
 * counts as known when ssh_config maps it somewhere, or it is an address, or it resolves here.
 */
async function knownToSsh(host: string, g: SshGValues, ctx: HostsContext): Promise<boolean> {
  if (ipVersion(host) !== 0 || (g.hostname && g.hostname !== host) || g.proxyjump || g.proxycommand)
    return true;
  return (ctx.resolves ?? resolvesHere)(host);
}

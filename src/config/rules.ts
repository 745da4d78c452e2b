// Checks the schema cannot express: references between hosts, chain cycles and
// port ranges. Each rule collects every problem, so one run shows them all.
import type { Problem } from '../errors.js';
import { parseBindServer } from './bind.js';
import { checkChains, cycleFrom, relayedTo } from './chains.js';
import { checkForwards } from './forward-rules.js';
import { parseServerProgram } from './mosh-programs.js';
import { parsePortRange } from './ports.js';
import { describePath } from './schema.js';
import type { Origins, Position } from './source.js';
import { pointer } from './source.js';
import { suggest } from './suggest.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';

export function checkRules(data: unknown, origins: Origins, fallback: Position): Problem[] {
  const problems: Problem[] = [];
  const at = (ptr: string): Position => origins.get(ptr)?.value ?? fallback;
  if (!isObj(data)) return problems;
  const hosts = isObj(data.hosts) ? data.hosts : {};
  const names = Object.keys(hosts);

  // Port ranges wherever they may appear.
  const range = (parent: unknown, field: string, ptr: () => string): void => {
    if (!isObj(parent) || !Object.hasOwn(parent, field)) return;
    const r = parsePortRange(parent[field]);
    if (!r.ok) problems.push({ ...at(ptr()), message: `${describePath(ptr())}: ${r.message}`, hint: r.hint });
  };
  const own = (parent: Obj, key: string): unknown => (Object.hasOwn(parent, key) ? parent[key] : undefined);
  const defaults = own(data, 'defaults');
  range(own(data, 'mosh'), 'server_ports', () => '/mosh/server_ports');
  range(
    isObj(defaults) ? own(defaults, 'mosh') : undefined,
    'server_ports',
    () => '/defaults/mosh/server_ports',
  );
  range(isObj(defaults) ? own(defaults, 'relay') : undefined, 'ports', () => '/defaults/relay/ports');
  for (const name of names) {
    const host = hosts[name];
    if (!isObj(host)) continue;
    range(
      own(host, 'mosh'),
      'server_ports',
      () => `${pointer(pointer('/hosts', name), 'mosh')}/server_ports`,
    );
    range(own(host, 'relay'), 'ports', () => `${pointer(pointer('/hosts', name), 'relay')}/ports`);
  }

  // mosh.bind_server: the schema lets through what looks like an address; node:net decides.
  const bindFields = [
    '/mosh/bind_server',
    ...names.map((n) => `${pointer(pointer('/hosts', n), 'mosh')}/bind_server`),
  ];
  for (const ptr of bindFields) {
    const value = get(data, ptr);
    // What is not even made of address characters, the schema reported already.
    if (typeof value !== 'string' || !/^[0-9A-Fa-f:.]+$/.test(value)) continue;
    const r = parseBindServer(value);
    if (!r.ok) problems.push({ ...at(ptr), message: `${describePath(ptr)}: ${r.message}`, hint: r.hint });
  }

  // mosh.server: the schema checks its characters; it must also name a mosh-server.
  const serverFields = [
    '/mosh/server',
    ...names.map((n) => `${pointer(pointer('/hosts', n), 'mosh')}/server`),
  ];
  for (const ptr of serverFields) {
    const value = get(data, ptr);
    if (typeof value !== 'string' || !/^(?!-)(~\/)?[A-Za-z0-9 /._+,:@%-]+$/.test(value)) continue;
    const r = parseServerProgram(value);
    if (!r.ok) problems.push({ ...at(ptr), message: `${describePath(ptr)}: ${r.message}`, hint: r.hint });
  }

  // forward: each entry a forward ssh takes, no two listening on one port or path.
  for (const p of checkForwards(data, at)) problems.push(p);

  // `via` references, then whole chains (cycles, repeats) once the references are sound.
  const via = new Map<string, string[]>();
  for (const name of names) {
    const host = hosts[name];
    const list: unknown[] = isObj(host) && Array.isArray(host.via) ? host.via : [];
    // A copy only when the schema check will have found a hop that is not a name.
    via.set(name, list.every(isString) ? list : list.filter(isString));
  }
  const guesses = new Guesses(names);
  for (const [name, list] of via) {
    list.forEach((hop, i) => {
      if (hop !== name && via.has(hop)) return;
      const ptr = pointer(pointer(pointer('/hosts', name), 'via'), i);
      if (hop === name) {
        problems.push({
          ...at(ptr),
          message: `host "${name}" lists itself in via`,
          hint: `remove "${name}" from its own via list`,
        });
      } else {
        const guess = guesses.for(hop);
        problems.push({
          ...at(ptr),
          message: `host "${name}": via names unknown host "${hop}"`,
          hint: guess
            ? `did you mean "${guess}"?`
            : `declare "${hop}" under hosts:, or use one of: ${guesses.list}`,
        });
      }
    });
  }
  const checks = checkChains(via);
  const reported = new Set<readonly string[]>();
  for (const name of names) {
    const r = checks.get(name);
    if (!r || r.ok) continue;
    const ptr = pointer(pointer(pointer('/hosts', name), 'via'), 0);
    if (r.reason === 'cycle') {
      // Report each cycle once, at one of its members; hosts that merely lead into it are not its cause.
      if (!r.loop || reported.has(r.loop.hosts)) continue;
      reported.add(r.loop.hosts);
      problems.push({
        ...at(ptr),
        message: `cycle in the jump chain: ${cycleFrom(r.loop).join(' → ')}`,
        hint: 'a host cannot be reached through itself; remove one of these via entries',
      });
    } else if (r.reason === 'repeated' && r.name !== name) {
      problems.push({
        ...at(ptr),
        message: `host "${name}": "${r.name}" appears twice in its jump chain`,
        hint: 'a chain visits each hop once; the first via entry brings its own via along',
      });
    } else if (r.reason === 'repeated' && !via.get(name)?.includes(name)) {
      // In its own chain through the via of a hop before it (one listing itself was reported above).
      problems.push({
        ...at(ptr),
        message: `host "${name}": its jump chain leads back to "${name}"`,
        hint: `a host cannot be reached through itself; the first via entry brings its own via along, and that names "${name}"`,
      });
    }
  }
  // The python3 and perl relays speak IPv6; socat and nc relays (chosen by
  // name) are built for IPv4 only, so a host one of them forwards to needs IPv4.
  const runtimeOf = (hop: string): unknown => {
    const h = hosts[hop];
    const ownRuntime = isObj(h) && isObj(h.relay) ? h.relay.runtime : undefined;
    return (
      ownRuntime ??
      (isObj(data.defaults) && isObj(data.defaults.relay) ? data.defaults.relay.runtime : undefined)
    );
  };
  const weakRelay = (hop: string): boolean => runtimeOf(hop) === 'socat' || runtimeOf(hop) === 'nc';
  // Which relays forward to which host takes a walk of every route: only when one could be weak.
  for (const [name, from] of names.some(weakRelay) ? relayedTo(names, via, checks) : []) {
    const host = hosts[name];
    const address = isObj(host) ? host.address : undefined;
    if (typeof address !== 'string' || !address.includes(':')) continue;
    const weak = [...from].find(weakRelay);
    if (weak === undefined) continue;
    problems.push({
      ...at(pointer(pointer('/hosts', name), 'address')),
      message: `host "${name}" has an IPv6 address, but the ${String(runtimeOf(weak))} relay on "${weak}" that forwards to it speaks IPv4 only`,
      hint: `use relay.runtime: auto on "${weak}" (python3 or perl relays speak IPv6), or give "${name}" an IPv4 address or a DNS name with an A record`,
    });
  }
  return problems;
}

/**
 * "Did you mean" for names in `via`, each name looked up once. The search
 * compares with every host, so over a file of 20 000 hosts it is given a
 * budget: past it, the hint lists hosts instead. The list is cut too: a hint
 * of 20 000 names, once per wrong name, would be read by nobody.
 */
class Guesses {
  private readonly done = new Map<string, string | undefined>();
  private budget = 2_000_000;
  readonly list: string;

  constructor(private readonly names: readonly string[]) {
    const shown = names.slice(0, LISTED);
    const more = names.length - shown.length;
    this.list = `${shown.join(', ')}${more > 0 ? `, and ${more} more` : ''}`;
  }

  for(hop: string): string | undefined {
    if (this.done.has(hop)) return this.done.get(hop);
    if (this.budget <= 0) return undefined;
    this.budget -= this.names.length;
    const guess = suggest(hop, this.names);
    this.done.set(hop, guess);
    return guess;
  }
}

/** Host names a hint lists at most. */
const LISTED = 50;

/** The value at a JSON pointer, if every step on the way is a map. */
function get(data: unknown, ptr: string): unknown {
  let cur: unknown = data;
  for (const seg of ptr.split('/').slice(1)) {
    if (!isObj(cur)) return undefined;
    cur = cur[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

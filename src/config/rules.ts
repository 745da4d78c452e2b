// Checks the schema cannot express: references between hosts, chain cycles and
// port ranges. Each rule collects every problem, so one run shows them all.
import type { Problem } from '../errors.js';
import { parseBindServer } from './bind.js';
import { resolveChain } from './chains.js';
import { parseServerProgram } from './mosh-programs.js';
import { parsePortRange } from './ports.js';
import { describePath } from './schema.js';
import type { Origins, Position } from './source.js';
import { pointer } from './source.js';
import { suggest } from './suggest.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function checkRules(data: unknown, origins: Origins, fallback: Position): Problem[] {
  const problems: Problem[] = [];
  const at = (ptr: string): Position => origins.get(ptr)?.value ?? fallback;
  if (!isObj(data)) return problems;
  const hosts = isObj(data.hosts) ? data.hosts : {};
  const names = Object.keys(hosts);

  // Port ranges wherever they may appear.
  const rangeFields: string[] = [
    '/mosh/server_ports',
    '/defaults/mosh/server_ports',
    '/defaults/relay/ports',
  ];
  for (const name of names) {
    rangeFields.push(pointer(pointer('/hosts', name), 'mosh') + '/server_ports');
    rangeFields.push(pointer(pointer('/hosts', name), 'relay') + '/ports');
  }
  for (const ptr of rangeFields) {
    if (!origins.has(ptr)) continue;
    const r = parsePortRange(get(data, ptr));
    if (!r.ok) problems.push({ ...at(ptr), message: `${describePath(ptr)}: ${r.message}`, hint: r.hint });
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

  // `via` references, then whole chains (cycles, repeats) once the references are sound.
  const via = new Map<string, string[]>();
  for (const name of names) {
    const host = hosts[name];
    const list = isObj(host) && Array.isArray(host.via) ? host.via.filter((v) => typeof v === 'string') : [];
    via.set(name, list);
  }
  for (const [name, list] of via) {
    list.forEach((hop, i) => {
      const ptr = pointer(pointer(pointer('/hosts', name), 'via'), i);
      if (hop === name) {
        problems.push({
          ...at(ptr),
          message: `host "${name}" lists itself in via`,
          hint: `remove "${name}" from its own via list`,
        });
      } else if (!via.has(hop)) {
        const guess = suggest(hop, names);
        problems.push({
          ...at(ptr),
          message: `host "${name}": via names unknown host "${hop}"`,
          hint: guess
            ? `did you mean "${guess}"?`
            : `declare "${hop}" under hosts:, or use one of: ${names.join(', ')}`,
        });
      }
    });
  }
  const reported = new Set<string>();
  /** Host → the hops whose relays forward to it. */
  const relayedTo = new Map<string, Set<string>>();
  for (const name of names) {
    const r = resolveChain(name, via);
    // Every host after the first of a route receives UDP from a relay on the hop before it.
    if (r.ok)
      [...r.chain, name].forEach((h, i, route) => {
        const from = route[i - 1];
        if (from !== undefined) relayedTo.set(h, (relayedTo.get(h) ?? new Set()).add(from));
      });
    if (r.ok) continue;
    const ptr = pointer(pointer(pointer('/hosts', name), 'via'), 0);
    if (r.reason === 'cycle') {
      // Report each cycle once, at one of its members; hosts that merely lead into it are not its cause.
      const cycle = r.path.slice(r.path.indexOf(r.path[r.path.length - 1] ?? ''));
      const key = cycle.slice(1).sort().join(',');
      if (!cycle.includes(name) || reported.has(key)) continue;
      reported.add(key);
      problems.push({
        ...at(ptr),
        message: `cycle in the jump chain: ${cycle.join(' → ')}`,
        hint: 'a host cannot be reached through itself; remove one of these via entries',
      });
    } else if (r.reason === 'repeated' && r.name !== name) {
      // A host repeating itself was reported above as "lists itself"; unknown names too.
      problems.push({
        ...at(ptr),
        message: `host "${name}": "${r.name}" appears twice in its jump chain`,
        hint: 'a chain visits each hop once; the first via entry brings its own via along',
      });
    }
  }
  // The python3 and perl relays speak IPv6; socat and nc relays (chosen by
  // name) are built for IPv4 only, so a host one of them forwards to needs IPv4.
  const defaults = isObj(data.defaults) ? data.defaults : {};
  const runtimeOf = (hop: string): unknown => {
    const h = hosts[hop];
    const own = isObj(h) && isObj(h.relay) ? h.relay.runtime : undefined;
    return own ?? (isObj(defaults.relay) ? defaults.relay.runtime : undefined);
  };
  for (const [name, from] of relayedTo) {
    const host = hosts[name];
    const address = isObj(host) ? host.address : undefined;
    if (typeof address !== 'string' || !address.includes(':')) continue;
    const weak = [...from].find((hop) => runtimeOf(hop) === 'socat' || runtimeOf(hop) === 'nc');
    if (weak === undefined) continue;
    problems.push({
      ...at(pointer(pointer('/hosts', name), 'address')),
      message: `host "${name}" has an IPv6 address, but the ${String(runtimeOf(weak))} relay on "${weak}" that forwards to it speaks IPv4 only`,
      hint: `use relay.runtime: auto on "${weak}" (python3 or perl relays speak IPv6), or give "${name}" an IPv4 address or a DNS name with an A record`,
    });
  }
  return problems;
}

function get(data: unknown, ptr: string): unknown {
  let cur: unknown = data;
  for (const seg of ptr.split('/').slice(1)) {
    if (!isObj(cur)) return undefined;
    cur = cur[seg.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return cur;
}

// The remote command that starts relay v2 on a hop. Pure: no I/O (the caller
// reads runtime/relay.py and runtime/relay.pl and passes their text in).
//
// Nothing may be written on a bastion, and one ssh exec must try python3 and then
// perl without another round trip. So stdin carries both programs, python's
// first, then the control lines: `<relay.py><relay.pl><TO/PING/STATUS/QUIT...>`.
// Each runtime starts from a one-line bootstrap in argv that reads exactly its own
// program's bytes (perl first skips python's) and runs it; what follows is the
// control channel. A runtime that cannot run the relay exits 90 before reading
// any stdin, a missing or unexecutable one gives 126/127 from sh, and then the
// next runtime gets the untouched stream.

import { checkInt, invalid } from './checks.js';
import {
  checkHostArg,
  launchCommand,
  launchScript,
  noRuntimeLines,
  perlBoot,
  pythonBoot,
  type TwoPrograms,
  type TwoRuntimeLaunch,
} from './two-runtimes.js';
import { hostPort } from '../host-port.js';

export type RelayRuntime = 'python3' | 'perl';

export interface RelayLaunchSpec {
  /** auto: python3, then perl. A single runtime is tried alone. */
  runtime: 'auto' | RelayRuntime;
  listen: { from: number; to: number };
  /** Seconds without an upstream reply after which the relay exits (mosh network_timeout). */
  idleTimeout: number;
  /** Cap on tracked client source addresses; the relay's default is 64. */
  maxClients?: number;
  /** Seconds the next hop has to answer at all; the relay's default is 120. */
  firstContact?: number;
  /** Seconds of ICMP port unreachable without a reply before the relay exits 4; default 60. */
  refusedExit?: number;
  /** The next hop, when known at start; otherwise send a TO line later. */
  to?: { address: string; port: number };
}

export type RelayPrograms = TwoPrograms;

/** The command, and the program(s) to write on stdin first. */
export type RelayLaunch = TwoRuntimeLaunch;

/** Exit codes of the launch script and the relays (beyond 0). */
export const RelayExit = {
  badArguments: 2,
  noFreePort: 3,
  /** The next hop kept answering ICMP port unreachable: the server is gone. */
  refused: 4,
  /** Neither runtime could run. */
  noRuntime: 5,
  /** From a bootstrap: this runtime cannot run the relay (too old, a module missing). */
  unusable: 90,
  /** From a bootstrap: stdin ended before the program did. */
  shortProgram: 91,
} as const;

export const PYTHON_BOOT = pythonBoot('moshctl-relay.py');

/** Checks for what relay.pl needs (Socket with getaddrinfo arrived in perl 5.14, inet_pton). */
export const PERL_BOOT = perlBoot({
  sub: 'moshctl_relay',
  needs: 'defined &Socket::getaddrinfo && defined &Socket::inet_pton',
});

/** `/bin/sh -c LAUNCH_SH moshctl-relay MODE P L RELAY-ARGS...` (see launchScript). */
export const LAUNCH_SH = launchScript({
  pythonBoot: PYTHON_BOOT,
  perlBoot: PERL_BOOT,
  prefix: 'MOSHCTL-RELAY',
  noRuntime: noRuntimeLines('relay'),
  noRuntimeExit: RelayExit.noRuntime,
});

/**
 * An IPv4 or IPv6 literal or a DNS name, as the relays accept it: never a leading
 * `-`, shell syntax, a zone index or an empty label.
 */
export function checkRelayHost(address: string): string {
  return checkHostArg(address, 'next-hop address', 'use an IPv4 or IPv6 address or a host name');
}

export function checkRelayPort(port: number): number {
  return checkInt('next-hop port', port, 1, 65535);
}

export function relayLaunch(spec: RelayLaunchSpec, programs: RelayPrograms): RelayLaunch {
  const runtime = spec.runtime;
  if (runtime !== 'auto' && runtime !== 'python3' && runtime !== 'perl')
    invalid('runtime', runtime, 'use auto, python3 or perl');
  const from = checkInt('listen port', spec.listen.from, 1, 65535);
  const to = checkInt('listen port', spec.listen.to, from, 65535);
  const args: (string | number)[] = [
    '--ports',
    `${from}-${to}`,
    '--idle-timeout',
    checkInt('idle timeout', spec.idleTimeout, 1, 604800),
  ];
  if (spec.maxClients !== undefined)
    args.push('--max-clients', checkInt('max clients', spec.maxClients, 1, 4096));
  if (spec.firstContact !== undefined)
    args.push('--first-contact', checkInt('first-contact timeout', spec.firstContact, 1, 604800));
  if (spec.refusedExit !== undefined)
    args.push('--refused-exit', checkInt('refused-exit timeout', spec.refusedExit, 1, 604800));
  if (spec.to) {
    const host = checkRelayHost(spec.to.address);
    const port = checkRelayPort(spec.to.port);
    args.push('--to', hostPort(host, port));
  }
  return launchCommand({
    script: LAUNCH_SH,
    name: 'moshctl-relay',
    label: 'relay',
    runtime,
    programs,
    files: { python3: 'relay.py', perl: 'relay.pl' },
    args,
  });
}

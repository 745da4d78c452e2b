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
import { isIPv4, isIPv6 } from 'node:net';
import { SH, shellJoin, shellQuote } from './shell.js';

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

export interface RelayPrograms {
  python3: string;
  perl: string;
}

export interface RelayLaunch {
  /** For the hop's login shell, whatever it is: everything runs under /bin/sh by path. */
  command: string;
  /** The program(s), to write before any control line; then keep stdin open as the control channel. */
  stdin: string;
}

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

// Both bootstraps are single lines free of `'` and backslashes: they sit inside the
// sh script, which the login shell (bash, dash, zsh, fish or csh) sees single-quoted,
// and fish reads `\\` and `\'` inside single quotes as escapes.

/**
 * argv: `-c BOOT P L ARGS...`. Reads P + L bytes and runs the first P: perl's
 * program follows python's on stdin and must not reach the control channel.
 * Python-2-compatible syntax, so an old python exits 90 instead of printing a
 * syntax error. os.read, not sys.stdin: a buffered reader would swallow the
 * control lines that follow. `-c` puts the current folder (the hop user's home)
 * first on sys.path, where a stray socket.py would shadow the standard library:
 * it goes before the relay imports anything. The iter/any part is a loop in one
 * line: read until P + L bytes, exit 91 on early EOF.
 */
export const PYTHON_BOOT =
  'import sys,os;sys.exit(90) if sys.version_info<(3,6) else None;sys.path[:]=[p for p in sys.path if p];' +
  'n=int(sys.argv.pop(1));m=n+int(sys.argv.pop(1));b=bytearray();' +
  'any(b.extend(os.read(0,m-len(b)) or sys.exit(91)) for _ in iter(lambda:len(b)<m,False));' +
  'exec(compile(bytes(b[:n]),"moshctl-relay.py","exec"),{"__name__":"__main__"})';

/**
 * argv: `-e BOOT -- P L ARGS...`. Reads P + L bytes and runs the last L. Checks for what relay.pl needs (Socket with
 * getaddrinfo arrived in perl 5.14) before touching stdin; sysread, not <STDIN>,
 * for the same reason as os.read above. The program is evaluated in a sub declared
 * before the bootstrap's own variables, so it cannot see (or lean on) them.
 */
export const PERL_BOOT =
  '$] >= 5.010 or exit 90; for my $m (qw(Socket POSIX)) { eval "require $m; 1" or exit 90 } ' +
  'defined &Socket::getaddrinfo && defined &Socket::inet_pton or exit 90; ' +
  'sub moshctl_relay { eval(shift(@_) . ";1") or do { print STDERR $@; exit 1 } } ' +
  'my ($p, $l) = splice @ARGV, 0, 2; my $s = ""; ' +
  'while (length($s) < $p + $l) { sysread(STDIN, $s, $p + $l - length($s), length($s)) or exit 91 } ' +
  'moshctl_relay(substr($s, $p))';

const NO_RUNTIME = {
  auto: 'no relay runtime: neither python3 (>= 3.6) nor perl runs here; install python3 (apt install python3) or perl (the perl-base package)',
  python3:
    'no relay runtime: python3 (>= 3.6) does not run here; install it (apt install python3) or use runtime auto',
  perl: 'no relay runtime: perl does not run here; install it (the perl-base package) or use runtime auto',
};

/** 126/127: not executable or not found (sh); 90: the bootstrap declined. Anything else is the relay's own. */
const tryRuntime = (run: string): string => `${run}; r=$?; case $r in 126|127|90) ;; *) exit "$r";; esac`;

/**
 * `/bin/sh -c LAUNCH_SH moshctl-relay MODE P L RELAY-ARGS...`: MODE auto, python3
 * or perl; P and L the byte lengths of the two programs on stdin (0 for one not
 * sent). One line joined with `; ` so a csh login shell takes it too.
 */
export const LAUNCH_SH = [
  'm=$1 p=$2 l=$3',
  'shift 3',
  `if [ "$m" != perl ]; then ${tryRuntime(`python3 -c '${PYTHON_BOOT}' "$p" "$l" "$@"`)}; fi`,
  `if [ "$m" != python3 ]; then ${tryRuntime(`perl -e '${PERL_BOOT}' -- "$p" "$l" "$@"`)}; fi`,
  `case $m in python3) echo "MOSHCTL-RELAY ERROR ${NO_RUNTIME.python3}";; ` +
    `perl) echo "MOSHCTL-RELAY ERROR ${NO_RUNTIME.perl}";; ` +
    `*) echo "MOSHCTL-RELAY ERROR ${NO_RUNTIME.auto}";; esac`,
  `exit ${RelayExit.noRuntime}`,
].join('; ');

/**
 * An IPv4 or IPv6 literal or a DNS name, as the relays accept it: never a leading
 * `-`, shell syntax, a zone index or an empty label.
 */
export function checkRelayHost(address: string): string {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const name =
    address.length <= 253 && !/^[\d.]+$/.test(address) && address.split('.').every((l) => label.test(l));
  const ok = isIPv4(address) || (isIPv6(address) && /^[0-9A-Fa-f:.]+$/.test(address)) || name;
  if (!ok) invalid('next-hop address', address, 'use an IPv4 or IPv6 address or a host name');
  return address;
}

export function checkRelayPort(port: number): number {
  return checkInt('next-hop port', port, 1, 65535);
}

function checkProgram(name: string, text: string): string {
  // Byte counts travel as character counts below: only ASCII keeps them equal.
  if (Buffer.byteLength(text) !== text.length || text.length === 0)
    throw new Error(`relay launch: ${name} must be non-empty ASCII`);
  return text;
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
    args.push('--to', isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);
  }
  const python = runtime === 'perl' ? '' : checkProgram('relay.py', programs.python3);
  const perl = runtime === 'python3' ? '' : checkProgram('relay.pl', programs.perl);
  return {
    command: `${SH} -c ${shellQuote(LAUNCH_SH)} moshctl-relay ${shellJoin([runtime, python.length, perl.length, ...args])}`,
    stdin: python + perl,
  };
}

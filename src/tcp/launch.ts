// The remote command that starts the tcp transport's forwarder on the target, and
// the lines the forwarder prints. Pure: no I/O (the caller reads runtime/forwarder.py
// and runtime/forwarder.pl, script.ts, and passes their text in).
//
// The same shape as relay v2's launch (src/relay/launch.ts; its header has the why):
// nothing is written on the target, and one ssh exec tries python3 and then perl.
// stdin carries both programs, python's first, then the frame stream:
// `<forwarder.py><forwarder.pl><frames...>`. Each runtime starts from a one-line
// bootstrap in argv that reads exactly the programs' bytes and runs its own; what
// follows is frames (framing.ts). A runtime that cannot run the forwarder exits 90
// before reading any stdin, a missing or unexecutable one gives 126/127 from sh, and
// then the next runtime gets the untouched stream.
//
//   stdout, first:  MOSHCTL-FWD READY PID <pid> RUNTIME <python3|perl>   then only frames
//                   MOSHCTL-FWD ERROR <why>                              then exit 2 or 5
//   stderr, last:   MOSHCTL-FWD EXIT <why> sent=N received=N dropped=N refused=N
//
// sent and dropped count frames from stdin (dropped: the send failed, e.g. ECONNREFUSED
// while mosh-server is gone); received counts datagrams framed onto stdout; refused
// counts ICMP port unreachable, seen on a send or a receive.

import { isIPv4, isIPv6 } from 'node:net';
import { checkInt, invalid } from '../relay/checks.js';
import { SH, shellJoin, shellQuote } from '../relay/shell.js';

export type ForwarderRuntime = 'python3' | 'perl';

export interface ForwarderLaunchSpec {
  /** auto: python3, then perl. A single runtime is tried alone. */
  runtime: 'auto' | ForwarderRuntime;
  /** mosh-server's UDP port, as seen from the target: usually 127.0.0.1 or ::1. */
  to: { address: string; port: number };
  /** Seconds without a datagram either way after which the forwarder exits. */
  idleTimeout: number;
}

export interface ForwarderPrograms {
  python3: string;
  perl: string;
}

export interface ForwarderLaunch {
  /** For the target's login shell, whatever it is: everything runs under /bin/sh by path. */
  command: string;
  /** The program(s), to write before the first frame; then stdin is the frame stream. */
  stdin: string;
}

/** Exit codes of the launch script and the forwarders (beyond 0). */
export const ForwarderExit = {
  badArguments: 2,
  /** Neither runtime could run. */
  noRuntime: 5,
  /** stdin carried a frame length of 0 or above 65507: the stream is out of step. */
  badFrame: 6,
  /** From a bootstrap: this runtime cannot run the forwarder (too old, a module missing). */
  unusable: 90,
  /** From a bootstrap: stdin ended before the programs did. */
  shortProgram: 91,
} as const;

// Both bootstraps are single lines free of `'` and backslashes: they sit inside the sh
// script, which the login shell (bash, dash, zsh, fish or csh) sees single-quoted.

/**
 * argv: `-c BOOT P L ARGS...`; reads P + L bytes and runs the first P. As relay v2's:
 * Python-2-compatible syntax (an old python exits 90, silently), os.read (a buffered
 * reader would swallow the first frames), the current folder off sys.path (a stray
 * socket.py in the home folder must not shadow the standard library), exit 91 on EOF.
 */
export const PYTHON_BOOT =
  'import sys,os;sys.exit(90) if sys.version_info<(3,6) else None;sys.path[:]=[p for p in sys.path if p];' +
  'n=int(sys.argv.pop(1));m=n+int(sys.argv.pop(1));b=bytearray();' +
  'any(b.extend(os.read(0,m-len(b)) or sys.exit(91)) for _ in iter(lambda:len(b)<m,False));' +
  'exec(compile(bytes(b[:n]),"moshctl-fwd.py","exec"),{"__name__":"__main__"})';

/**
 * argv: `-e BOOT -- P L ARGS...`; reads P + L bytes and runs the last L. Checks for
 * what forwarder.pl needs (Socket with getaddrinfo: perl 5.14) before touching stdin.
 * binmode first: with PERL_UNICODE set, sysread on a :utf8 handle is fatal.
 */
export const PERL_BOOT =
  '$] >= 5.010 or exit 90; for my $m (qw(Socket POSIX)) { eval "require $m; 1" or exit 90 } ' +
  'defined &Socket::getaddrinfo or exit 90; binmode STDIN; ' +
  'sub moshctl_fwd { eval(shift(@_) . ";1") or do { print STDERR $@; exit 1 } } ' +
  'my ($p, $l) = splice @ARGV, 0, 2; my $s = ""; ' +
  'while (length($s) < $p + $l) { sysread(STDIN, $s, $p + $l - length($s), length($s)) or exit 91 } ' +
  'moshctl_fwd(substr($s, $p))';

const NO_RUNTIME = {
  auto: 'no forwarder runtime: neither python3 (>= 3.6) nor perl runs here; install python3 (apt install python3) or perl (the perl-base package)',
  python3:
    'no forwarder runtime: python3 (>= 3.6) does not run here; install it (apt install python3) or use runtime auto',
  perl: 'no forwarder runtime: perl does not run here; install it (the perl-base package) or use runtime auto',
};

/** 126/127: not executable or not found (sh); 90: the bootstrap declined. Anything else is the forwarder's own. */
const tryRuntime = (run: string): string => `${run}; r=$?; case $r in 126|127|90) ;; *) exit "$r";; esac`;

/**
 * `/bin/sh -c LAUNCH_SH moshctl-fwd MODE P L FORWARDER-ARGS...`: MODE auto, python3 or
 * perl; P and L the byte lengths of the two programs on stdin (0 for one not sent).
 * One line joined with `; ` so a csh login shell takes it too.
 */
export const LAUNCH_SH = [
  'm=$1 p=$2 l=$3',
  'shift 3',
  `if [ "$m" != perl ]; then ${tryRuntime(`python3 -c '${PYTHON_BOOT}' "$p" "$l" "$@"`)}; fi`,
  `if [ "$m" != python3 ]; then ${tryRuntime(`perl -e '${PERL_BOOT}' -- "$p" "$l" "$@"`)}; fi`,
  `case $m in python3) echo "MOSHCTL-FWD ERROR ${NO_RUNTIME.python3}";; ` +
    `perl) echo "MOSHCTL-FWD ERROR ${NO_RUNTIME.perl}";; ` +
    `*) echo "MOSHCTL-FWD ERROR ${NO_RUNTIME.auto}";; esac`,
  `exit ${ForwarderExit.noRuntime}`,
].join('; ');

/**
 * An IPv4 or IPv6 literal or a DNS name (the rule of a relay's next hop): never a
 * leading `-`, shell syntax, a zone index or an empty label.
 */
export function checkForwardHost(address: string): string {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const name =
    address.length <= 253 && !/^[\d.]+$/.test(address) && address.split('.').every((l) => label.test(l));
  const ok = isIPv4(address) || (isIPv6(address) && /^[0-9A-Fa-f:.]+$/.test(address)) || name;
  if (!ok) invalid('mosh-server address', address, 'use 127.0.0.1, ::1 or another address of the target');
  return address;
}

function checkProgram(name: string, text: string): string {
  // Byte counts travel as character counts below: only ASCII keeps them equal.
  if (Buffer.byteLength(text) !== text.length || text.length === 0)
    throw new Error(`forwarder launch: ${name} must be non-empty ASCII`);
  return text;
}

export function forwarderLaunch(spec: ForwarderLaunchSpec, programs: ForwarderPrograms): ForwarderLaunch {
  const runtime = spec.runtime;
  if (runtime !== 'auto' && runtime !== 'python3' && runtime !== 'perl')
    invalid('forwarder runtime', runtime, 'use auto, python3 or perl');
  const host = checkForwardHost(spec.to.address);
  const port = checkInt('mosh-server port', spec.to.port, 1, 65535);
  const args = [
    '--to',
    isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`,
    '--idle-timeout',
    checkInt('forwarder idle timeout', spec.idleTimeout, 1, 604800),
  ];
  const python = runtime === 'perl' ? '' : checkProgram('forwarder.py', programs.python3);
  const perl = runtime === 'python3' ? '' : checkProgram('forwarder.pl', programs.perl);
  return {
    command: `${SH} -c ${shellQuote(LAUNCH_SH)} moshctl-fwd ${shellJoin([runtime, python.length, perl.length, ...args])}`,
    stdin: python + perl,
  };
}

const EOL = String.raw`\r?\n?$`;

export type ReadyLine = { pid: number; runtime: ForwarderRuntime } | { error: string };

/** The forwarder's first line: which process it is, or why it did not start; undefined for anything else. */
export function parseReady(line: string): ReadyLine | undefined {
  const ok = new RegExp(`^MOSHCTL-FWD READY PID (\\d{1,10}) RUNTIME (python3|perl)${EOL}`).exec(line);
  if (ok) {
    const pid = Number(ok[1]);
    if (pid < 2 || pid > 4194304) return { error: `forwarder printed an impossible pid: ${line.trim()}` };
    return { pid, runtime: ok[2] as ForwarderRuntime };
  }
  const err = new RegExp(`^MOSHCTL-FWD ERROR ([ -~]+?)${EOL}`).exec(line);
  return err ? { error: err[1] ?? '' } : undefined;
}

export interface ForwarderEnd {
  why: 'eof' | 'idle' | 'signal' | 'closed' | 'bad-frame';
  sent: number;
  received: number;
  dropped: number;
  refused: number;
}

/** The line a forwarder writes on stderr as it exits: why, and what it carried. */
export function parseExit(line: string): ForwarderEnd | undefined {
  const n = String.raw`(\d{1,20})`;
  const m = new RegExp(
    `^MOSHCTL-FWD EXIT (eof|idle|signal|closed|bad-frame) sent=${n} received=${n} dropped=${n} refused=${n}${EOL}`,
  ).exec(line);
  if (!m) return undefined;
  return {
    why: m[1] as ForwarderEnd['why'],
    sent: Number(m[2]),
    received: Number(m[3]),
    dropped: Number(m[4]),
    refused: Number(m[5]),
  };
}

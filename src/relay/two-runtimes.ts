// One ssh exec that runs a program in python3, else in perl, with both programs
// on stdin and nothing written on the host: the shape shared by relay v2
// (launch.ts, whose header has the why) and the tcp transport's forwarder
// (src/tcp/launch.ts). Pure: it only builds text.
//
// Both bootstraps are single lines free of `'` and backslashes: they sit inside
// the sh script, which the login shell (bash, dash, zsh, fish or csh) sees
// single-quoted, and fish reads `\\` and `\'` inside single quotes as escapes.
import { isIPv4, isIPv6 } from 'node:net';
import { invalid } from './checks.js';
import { SH, shellJoin, shellQuote } from '../remote/shell.js';

/**
 * argv: `-c BOOT P L ARGS...`. Reads P + L bytes and runs the first P: perl's
 * program follows python's on stdin and must not reach what comes after.
 * Python-2-compatible syntax, so an old python exits 90 instead of printing a
 * syntax error. os.read, not sys.stdin: a buffered reader would swallow the
 * lines that follow. `-c` puts the current folder (the user's home) first on
 * sys.path, where a stray socket.py would shadow the standard library: it goes
 * before the program imports anything. The iter/any part is a loop in one
 * line: read until P + L bytes, exit 91 on early EOF. `file` names the program
 * in tracebacks.
 */
export function pythonBoot(file: string): string {
  return (
    'import sys,os;sys.exit(90) if sys.version_info<(3,6) else None;sys.path[:]=[p for p in sys.path if p];' +
    'n=int(sys.argv.pop(1));m=n+int(sys.argv.pop(1));b=bytearray();' +
    'any(b.extend(os.read(0,m-len(b)) or sys.exit(91)) for _ in iter(lambda:len(b)<m,False));' +
    `exec(compile(bytes(b[:n]),"${file}","exec"),{"__name__":"__main__"})`
  );
}

/**
 * argv: `-e BOOT -- P L ARGS...`. Reads P + L bytes and runs the last L, in a
 * sub named `sub` declared before the bootstrap's own variables (so the program
 * cannot see or lean on them). `needs` is checked before stdin is touched (exit
 * 90: this perl cannot run the program); `before` runs just before reading.
 * sysread, not <STDIN>, for the same reason as os.read in pythonBoot.
 */
export function perlBoot(o: { sub: string; needs: string; before?: string }): string {
  return (
    '$] >= 5.010 or exit 90; for my $m (qw(Socket POSIX)) { eval "require $m; 1" or exit 90 } ' +
    `${o.needs} or exit 90; ${o.before ? `${o.before} ` : ''}` +
    `sub ${o.sub} { eval(shift(@_) . ";1") or do { print STDERR $@; exit 1 } } ` +
    'my ($p, $l) = splice @ARGV, 0, 2; my $s = ""; ' +
    'while (length($s) < $p + $l) { sysread(STDIN, $s, $p + $l - length($s), length($s)) or exit 91 } ' +
    `${o.sub}(substr($s, $p))`
  );
}

/** The text of both programs, as read from dist (a runtime not tried may be left out of stdin). */
export interface TwoPrograms {
  python3: string;
  perl: string;
}

/** A launch: the command for the host's login shell (everything runs under /bin/sh by path) and what goes on stdin first. */
export interface TwoRuntimeLaunch {
  command: string;
  stdin: string;
}

/** 126/127: not executable or not found (sh); 90: the bootstrap declined. Anything else is the program's own. */
const tryRuntime = (run: string): string => `${run}; r=$?; case $r in 126|127|90) ;; *) exit "$r";; esac`;

/**
 * `/bin/sh -c SCRIPT NAME MODE P L ARGS...`: MODE auto, python3 or perl; P and L
 * the byte lengths of the two programs on stdin (0 for one not sent). When none
 * runs it prints `PREFIX ERROR <why>` and exits `noRuntimeExit`. One line joined
 * with `; ` so a csh login shell takes it too.
 */
export function launchScript(o: {
  pythonBoot: string;
  perlBoot: string;
  prefix: string;
  noRuntime: { auto: string; python3: string; perl: string };
  noRuntimeExit: number;
}): string {
  return [
    'm=$1 p=$2 l=$3',
    'shift 3',
    `if [ "$m" != perl ]; then ${tryRuntime(`python3 -c '${o.pythonBoot}' "$p" "$l" "$@"`)}; fi`,
    `if [ "$m" != python3 ]; then ${tryRuntime(`perl -e '${o.perlBoot}' -- "$p" "$l" "$@"`)}; fi`,
    `case $m in python3) echo "${o.prefix} ERROR ${o.noRuntime.python3}";; ` +
      `perl) echo "${o.prefix} ERROR ${o.noRuntime.perl}";; ` +
      `*) echo "${o.prefix} ERROR ${o.noRuntime.auto}";; esac`,
    `exit ${o.noRuntimeExit}`,
  ].join('; ');
}

/** What a missing runtime is called in the lines launchScript prints: `no <what> runtime: ...`. */
export function noRuntimeLines(what: string): { auto: string; python3: string; perl: string } {
  return {
    auto: `no ${what} runtime: neither python3 (>= 3.6) nor perl runs here; install python3 (apt install python3) or perl (the perl-base package)`,
    python3: `no ${what} runtime: python3 (>= 3.6) does not run here; install it (apt install python3) or use runtime auto`,
    perl: `no ${what} runtime: perl does not run here; install it (the perl-base package) or use runtime auto`,
  };
}

/**
 * The command for `script` under /bin/sh by path ($0 is `name`), and the
 * stdin that carries the programs the runtime asked for needs. Programs must
 * be non-empty ASCII: their byte counts travel as character counts.
 */
export function launchCommand(o: {
  script: string;
  name: string;
  /** What is launched, for the message about a bad program: relay, forwarder. */
  label: string;
  runtime: 'auto' | 'python3' | 'perl';
  programs: TwoPrograms;
  files: TwoPrograms;
  args: readonly (string | number)[];
}): TwoRuntimeLaunch {
  const check = (file: string, text: string): string => {
    if (Buffer.byteLength(text) !== text.length || text.length === 0)
      throw new Error(`${o.label} launch: ${file} must be non-empty ASCII`);
    return text;
  };
  const python = o.runtime === 'perl' ? '' : check(o.files.python3, o.programs.python3);
  const perl = o.runtime === 'python3' ? '' : check(o.files.perl, o.programs.perl);
  return {
    command: `${SH} -c ${shellQuote(o.script)} ${o.name} ${shellJoin([o.runtime, python.length, perl.length, ...o.args])}`,
    stdin: python + perl,
  };
}

/**
 * An IPv4 or IPv6 literal or a DNS name, as both programs accept it: never a
 * leading `-`, shell syntax, a zone index or an empty label.
 */
export function checkHostArg(address: string, what: string, hint: string): string {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  const name =
    address.length <= 253 && !/^[\d.]+$/.test(address) && address.split('.').every((l) => label.test(l));
  const ok = isIPv4(address) || (isIPv6(address) && /^[0-9A-Fa-f:.]+$/.test(address)) || name;
  if (!ok) invalid(what, address, hint);
  return address;
}

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

import { checkInt, invalid } from '../relay/checks.js';
import {
  checkHostArg,
  launchCommand,
  launchScript,
  noRuntimeLines,
  perlBoot,
  pythonBoot,
  type TwoPrograms,
  type TwoRuntimeLaunch,
} from '../relay/two-runtimes.js';
import { hostPort } from '../host-port.js';

export type ForwarderRuntime = 'python3' | 'perl';

export interface ForwarderLaunchSpec {
  /** auto: python3, then perl. A single runtime is tried alone. */
  runtime: 'auto' | ForwarderRuntime;
  /** mosh-server's UDP port, as seen from the target: usually 127.0.0.1 or ::1. */
  to: { address: string; port: number };
  /** Seconds without a datagram either way after which the forwarder exits. */
  idleTimeout: number;
}

export type ForwarderPrograms = TwoPrograms;

/** The command, and the program(s) to write on stdin first. */
export type ForwarderLaunch = TwoRuntimeLaunch;

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

/** The forwarder's bootstraps and launch script, as relay v2's (src/relay/two-runtimes.ts). */
export const PYTHON_BOOT = pythonBoot('moshctl-fwd.py');

/**
 * Checks for what forwarder.pl needs (Socket with getaddrinfo: perl 5.14).
 * binmode first: with PERL_UNICODE set, sysread on a :utf8 handle is fatal.
 */
export const PERL_BOOT = perlBoot({
  sub: 'moshctl_fwd',
  needs: 'defined &Socket::getaddrinfo',
  before: 'binmode STDIN;',
});

/** `/bin/sh -c LAUNCH_SH moshctl-fwd MODE P L FORWARDER-ARGS...` (see launchScript). */
export const LAUNCH_SH = launchScript({
  pythonBoot: PYTHON_BOOT,
  perlBoot: PERL_BOOT,
  prefix: 'MOSHCTL-FWD',
  noRuntime: noRuntimeLines('forwarder'),
  noRuntimeExit: ForwarderExit.noRuntime,
});

/** An IPv4 or IPv6 literal or a DNS name (the rule of a relay's next hop). */
export function checkForwardHost(address: string): string {
  return checkHostArg(address, 'mosh-server address', 'use 127.0.0.1, ::1 or another address of the target');
}

export function forwarderLaunch(spec: ForwarderLaunchSpec, programs: ForwarderPrograms): ForwarderLaunch {
  const runtime = spec.runtime;
  if (runtime !== 'auto' && runtime !== 'python3' && runtime !== 'perl')
    invalid('forwarder runtime', runtime, 'use auto, python3 or perl');
  const host = checkForwardHost(spec.to.address);
  const port = checkInt('mosh-server port', spec.to.port, 1, 65535);
  const args = [
    '--to',
    hostPort(host, port),
    '--idle-timeout',
    checkInt('forwarder idle timeout', spec.idleTimeout, 1, 604800),
  ];
  return launchCommand({
    script: LAUNCH_SH,
    name: 'moshctl-fwd',
    label: 'forwarder',
    runtime,
    programs,
    files: { python3: 'forwarder.py', perl: 'forwarder.pl' },
    args,
  });
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

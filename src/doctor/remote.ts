// The commands doctor runs on the target, and how their output reads. Pure:
// every value from the config is validated and quoted here, since ssh hands
// the line to the user's login shell (bash, dash, zsh, fish or csh).
import type { PortRange } from '../config/types.js';
import { UserError } from '../errors.js';
import { checkInt } from '../relay/checks.js';
import {
  launchCommand,
  launchScript,
  noRuntimeLines,
  perlBoot,
  pythonBoot,
  type TwoRuntimeLaunch,
} from '../relay/two-runtimes.js';
import { SH, shellJoin } from '../remote/shell.js';
import { ECHO_PL, ECHO_PY } from './echo-programs.js';

/** As the schema's pattern for mosh.locale: checked again, since it reaches a shell. */
const LOCALE = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * mosh-server's version (its first line), and the character set the locale
 * gives, which is what mosh-server itself checks (it refuses anything but
 * UTF-8). `locale charmap` under a locale that is not installed says
 * ANSI_X3.4-1968. Running `--version`, not `command -v`, also catches a
 * mosh-server that is there but cannot run. One line with no `'` or
 * backslash: the login shell sees it single-quoted (fish reads escapes there,
 * csh takes no newline).
 */
const TARGET_SH = [
  'if command -v mosh-server >/dev/null 2>&1',
  'then v=$(mosh-server --version 2>&1 </dev/null)',
  'r=$?',
  'echo "MOSHCTL-DOCTOR SERVER $r $(echo "$v" | sed -n 1p)"',
  'else echo "MOSHCTL-DOCTOR SERVER missing"',
  'fi',
  'if command -v locale >/dev/null 2>&1',
  'then echo "MOSHCTL-DOCTOR LOCALE $(LC_ALL=$1 locale charmap 2>/dev/null)"',
  'else echo "MOSHCTL-DOCTOR LOCALE unknown"',
  'fi',
].join('; ');

export function targetCheckCommand(locale: string): string {
  if (!LOCALE.test(locale))
    throw UserError.one(
      `mosh.locale ${JSON.stringify(locale)} is not a locale name`,
      'use a locale name such as C.UTF-8 or en_US.UTF-8',
    );
  return `${SH} -c ${shellJoin([TARGET_SH, 'moshctl-doctor', locale])}`;
}

export interface TargetFacts {
  /** missing: not on PATH; broken: there, but `--version` failed (its words). */
  server:
    { state: 'ok'; version: string } | { state: 'missing' } | { state: 'broken'; said: string } | undefined;
  /** The character set under the locale; 'unknown' without a `locale` program there. */
  charmap: string | undefined;
}

export function parseTargetCheck(stdout: string): TargetFacts {
  const server = /^MOSHCTL-DOCTOR SERVER (?:(missing)|(\d+) ?(.*?))\s*$/m.exec(stdout);
  const locale = /^MOSHCTL-DOCTOR LOCALE ?(.*?)\s*$/m.exec(stdout);
  let facts: TargetFacts['server'];
  if (server?.[1]) facts = { state: 'missing' };
  else if (server) {
    const said = server[3] ?? '';
    facts =
      server[2] === '0' && /mosh/i.test(said) ? { state: 'ok', version: said } : { state: 'broken', said };
  }
  return { server: facts, charmap: locale ? (locale[1] ?? '') : undefined };
}

/** Whether a charmap is UTF-8, however the system spells it. */
export function isUtf8(charmap: string): boolean {
  return /^utf-?8$/i.test(charmap);
}

/** Seconds the echo lives at most when nothing ends its channel (a moshctl killed with SIGKILL). */
export const ECHO_LIFE_SECONDS = 30;

const ECHO_SH = launchScript({
  pythonBoot: pythonBoot('moshctl-echo.py'),
  perlBoot: perlBoot({ sub: 'moshctl_echo', needs: 'defined &Socket::pack_sockaddr_in6' }),
  prefix: 'MOSHCTL-ECHO',
  noRuntime: noRuntimeLines('echo'),
  noRuntimeExit: 5,
});

/** The UDP echo on a free port of `ports` (see echo-programs.ts), over stdin: nothing is written on the host. */
export function echoLaunch(
  ports: PortRange,
  lifeSeconds = ECHO_LIFE_SECONDS,
  runtime: 'auto' | 'python3' | 'perl' = 'auto',
): TwoRuntimeLaunch {
  const from = checkInt('echo port', ports.from, 1, 65535);
  const to = checkInt('echo port', ports.to, from, 65535);
  return launchCommand({
    script: ECHO_SH,
    name: 'moshctl-echo',
    label: 'echo',
    runtime,
    programs: { python3: ECHO_PY, perl: ECHO_PL },
    files: { python3: 'moshctl-echo.py', perl: 'moshctl-echo.pl' },
    args: [from, to, checkInt('echo lifetime', lifeSeconds, 1, 3600)],
  });
}

export type EchoLine = { port: number; runtime: 'python3' | 'perl' } | { error: string; noRuntime: boolean };

/** The echo's first line: its port, or why it did not start. */
export function parseEchoLine(line: string): EchoLine | undefined {
  const ok = /^MOSHCTL-ECHO PORT (\d{1,5}) RUNTIME (python3|perl)\s*$/.exec(line);
  if (ok) {
    const port = Number(ok[1]);
    if (port >= 1 && port <= 65535) return { port, runtime: ok[2] as 'python3' | 'perl' };
    return { error: `the echo printed an impossible port: ${line.trim()}`, noRuntime: false };
  }
  const err = /^MOSHCTL-ECHO ERROR ([ -~]+?)\s*$/.exec(line);
  return err ? { error: err[1] ?? '', noRuntime: /no echo runtime/.test(err[1] ?? '') } : undefined;
}

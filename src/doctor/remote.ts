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
import { parseServerProgram } from '../config/mosh-programs.js';
import { locateServerScript, parseServerFound, type ServerFound } from '../remote/mosh-server.js';
import { SH, shellJoin } from '../remote/shell.js';
import { ECHO_PL, ECHO_PY } from './echo-programs.js';

/** As the schema's pattern for mosh.locale: checked again, since it reaches a shell. */
const LOCALE = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * The mosh-server `up` would run (mosh.server, `$2`: a name looked up on
 * PATH, or a path, `~/` being the home there), where it is and its version
 * (its first line), and the character set the locale gives, which is what
 * mosh-server itself checks (it refuses anything but UTF-8). `locale charmap`
 * under a locale that is not installed says ANSI_X3.4-1968. Running
 * `--version`, not only `command -v`, also catches a mosh-server that is there
 * but cannot run; `command -v` prints a path that is no executable file too.
 * When it is missing or cannot run, where it usually is (as `up` looks). One
 * line with no `'` or backslash: the login shell sees it single-quoted (fish
 * reads escapes there, csh takes no newline).
 */
const TARGET_SH = [
  'case $2 in "~/"*) p=$HOME/${2#??};; *) p=$2;; esac',
  'w=$(command -v "$p" 2>/dev/null)',
  'if [ -n "$w" ] && [ -f "$w" ] && [ -x "$w" ]',
  'then v=$("$w" --version 2>&1 </dev/null)',
  'r=$?',
  'echo "MOSHCTL-DOCTOR SERVER $r $(echo "$v" | sed -n 1p)"',
  'echo "MOSHCTL-DOCTOR SERVER-AT $w"',
  'c=0',
  'elif [ -n "$w" ]',
  'then echo "MOSHCTL-DOCTOR SERVER 126 $w is not a file that can run"',
  'c=126',
  'else echo "MOSHCTL-DOCTOR SERVER missing"',
  'c=127',
  'fi',
  locateServerScript(),
  'if command -v locale >/dev/null 2>&1',
  'then echo "MOSHCTL-DOCTOR LOCALE $(LC_ALL=$1 locale charmap 2>/dev/null)"',
  'else echo "MOSHCTL-DOCTOR LOCALE unknown"',
  'fi',
].join('; ');

/** `server`: mosh.server, checked again since it reaches a shell (as an argument: `~/` is expanded there). */
export function targetCheckCommand(locale: string, server = 'mosh-server'): string {
  if (!LOCALE.test(locale))
    throw UserError.one(
      `mosh.locale ${JSON.stringify(locale)} is not a locale name`,
      'use a locale name such as C.UTF-8 or en_US.UTF-8',
    );
  const program = parseServerProgram(server);
  if (!program.ok) throw UserError.one(`mosh.server: ${program.message}`, program.hint);
  return `${SH} -c ${shellJoin([TARGET_SH, 'moshctl-doctor', locale, program.value])}`;
}

export interface TargetFacts {
  /**
   * ok: its version line, and where it is; missing: not found (`found`: where it
   * usually is); broken: there, but `--version` failed (its words, and its code:
   * 126 when it is no file that can run).
   */
  server:
    | { state: 'ok'; version: string; path?: string }
    | { state: 'missing'; found: ServerFound[] }
    | { state: 'broken'; said: string; code: number; found: ServerFound[] }
    | undefined;
  /** The character set under the locale; 'unknown' without a `locale` program there. */
  charmap: string | undefined;
}

export function parseTargetCheck(stdout: string): TargetFacts {
  const server = /^MOSHCTL-DOCTOR SERVER (?:(missing)|(\d+) ?(.*?))\s*$/m.exec(stdout);
  const at = /^MOSHCTL-DOCTOR SERVER-AT (\/[ -~]*?)\s*$/m.exec(stdout)?.[1];
  const locale = /^MOSHCTL-DOCTOR LOCALE ?(.*?)\s*$/m.exec(stdout);
  const found = stdout
    .split('\n')
    .map(parseServerFound)
    .filter((x) => x !== undefined);
  let facts: TargetFacts['server'];
  if (server?.[1]) facts = { state: 'missing', found };
  else if (server) {
    const said = server[3] ?? '';
    facts =
      server[2] === '0' && /mosh/i.test(said)
        ? { state: 'ok', version: said, ...(at ? { path: at } : {}) }
        : { state: 'broken', said, code: Number(server[2]), found };
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

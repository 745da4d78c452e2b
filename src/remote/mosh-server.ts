// The mosh-server command line and what it prints. sshd drops environment
// requests it does not list in AcceptEnv, so the timeouts go inline through
// `env`, which also works when the login shell is not sh-like (fish, csh).
import { isIP } from 'node:net';
import { BIND_SERVER_HINT, parseBindServer } from '../config/bind.js';
import { parseServerProgram } from '../config/mosh-programs.js';
import { UserError } from '../errors.js';
import { duration } from '../transport/errors.js';
import { SH, shellJoin, shellQuote } from './shell.js';
import type { KeptSession, ServerBind, ServerStep } from '../plan/types.js';
import { checkPid, checkStarted, PROC_SH, stopPidScript } from './processes.js';
import { checkAgentSocket } from '../forward/agent-link.js';
import { SESSION_MARK_SH, SESSION_REPORT_SH } from './sshd-session.js';

export function moshServerCommand(
  step: Pick<
    ServerStep,
    'ports' | 'networkTimeout' | 'signalTimeout' | 'locale' | 'command' | 'session' | 'bind' | 'program'
  > &
    Partial<Pick<ServerStep, 'agentSocket'>>,
): string {
  const argv: (string | number)[] = [
    'new',
    ...bindArgs(step.bind),
    '-p',
    `${step.ports.from}:${step.ports.to}`,
    '-l',
    `LANG=${step.locale}`,
  ];
  const command = step.command ?? [];
  const program = step.session ? keptSessionArgv(step.session, command) : command;
  if (program.length > 0) argv.push('--', ...program);
  const env = shellJoin([
    'env',
    `MOSH_SERVER_NETWORK_TMOUT=${step.networkTimeout}`,
    `MOSH_SERVER_SIGNAL_TMOUT=${step.signalTimeout}`,
  ]).concat(step.agentSocket ? ` ${agentSocketVar(step.agentSocket)}` : '');
  const server = `${env} ${remoteProgram(step.program)} ${shellJoin(argv)}`;
  if (!step.session) return server;
  // A missing tmux would only show inside the mosh window, as a session that
  // closes at once: check in this same exec, before mosh-server starts, and
  // say so in a line moshServerFailure recognizes. Running the program, not
  // `command -v`, also catches one that is there but cannot run; 126 and 127
  // are the shell's own "cannot run" and "not found". One compound command,
  // so a redirection after it (moshServerKeptCommand's 2>&1) covers it all.
  const p = step.session.program;
  const probe = `${p} ${p === 'tmux' ? '-V' : '-v'} >/dev/null 2>&1 || [ $? -lt 126 ]`;
  const missing = `${KEEPER_MISSING} ${p}`;
  return `if ${probe}; then ${server}; else echo ${shellQuote(missing)} >&2; false; fi`;
}

/**
 * mosh.server as one sh word: quoted, with a leading `~/` left outside the
 * quotes as "$HOME"/, so it is the remote user's home (the command runs
 * under sh there, which sshd gives HOME). Checked again, since it reaches a shell.
 */
export function remoteProgram(path: string): string {
  const r = parseServerProgram(path);
  if (!r.ok) throw UserError.one(`mosh.server: ${r.message}`, r.hint);
  return path.startsWith('~/') ? `"$HOME"/${shellQuote(path.slice(2))}` : shellQuote(path);
}

/**
 * SSH_AUTH_SOCK for the session's shell: the agent step's stable link
 * (`~/.moshctl/agent/NAME.sock`, checked again since it reaches a shell), with
 * the home left to the remote side as "$HOME".
 */
function agentSocketVar(socket: string): string {
  const path = checkAgentSocket(socket);
  return `SSH_AUTH_SOCK="$HOME"/${shellQuote(path.slice(2))}`;
}

const KEEPER_MISSING = 'moshctl: not installed or cannot run:';
const BOUND_MARK = 'MOSHCTL-SERVER BOUND';

/** mosh's --bind-server as mosh-server's options; an address is checked again, since it reaches a shell. */
function bindArgs(bind: ServerBind): string[] {
  if (bind.mode === 'ssh') return ['-s'];
  if (bind.mode === 'any') return [];
  const r = parseBindServer(bind.address);
  if (!r.ok || r.value === 'ssh' || r.value === 'any')
    throw UserError.one(`mosh-server bind address: ${r.ok ? bind.address : r.message}`, BIND_SERVER_HINT);
  return ['-i', r.value];
}

const FOUND_MARK = 'MOSHCTL-SERVER FOUND';

/** Where mosh-server usually is when a non-interactive ssh session's PATH misses it: Homebrew, pip-style and nix installs. */
export const USUAL_PLACES = [
  '/opt/homebrew/bin',
  '/usr/local/bin',
  '$HOME/.local/bin',
  '$HOME/.nix-profile/bin',
  '/run/current-system/sw/bin',
  '/nix/var/nix/profiles/default/bin',
  '/opt/local/bin',
  '/snap/bin',
  '/usr/bin',
];

/**
 * sh, for a mosh-server that was not found or could not run (exit 127 or
 * 126 in `$c`): `MOSHCTL-SERVER FOUND login PATH` for what `command -v` finds
 * in a login shell of the user (the PATH a terminal there has: Homebrew's
 * shellenv in ~/.zprofile, a nix profile), at most 5 s where `timeout`
 * exists; then `MOSHCTL-SERVER FOUND place PATH` for each usual place that
 * has one. Only executable files count: `command -v` also prints a path that
 * cannot run. Every login shell moshctl meets (sh, dash, ash, bash, zsh, fish)
 * takes `-l -c`; one that does not (csh) finds nothing, and the places remain.
 */
export function locateServerScript(): string {
  return LOCATE_SH;
}

const LOCATE_SH = [
  'case $c in 126|127) if [ -n "${SHELL-}" ]',
  'then if command -v timeout >/dev/null 2>&1',
  'then timeout 5 "$SHELL" -l -c "command -v mosh-server"',
  'else "$SHELL" -l -c "command -v mosh-server"',
  `fi </dev/null 2>/dev/null | while IFS= read -r f; do case "$f" in /*/mosh-server) [ -f "$f" ] && [ -x "$f" ] && echo "${FOUND_MARK} login $f";; esac; done`,
  'fi',
  `for d in ${USUAL_PLACES.map((d) => (d.startsWith('$HOME') ? `"${d}"` : d)).join(' ')}; do f=$d/mosh-server; [ -f "$f" ] && [ -x "$f" ] && echo "${FOUND_MARK} place $f"; done;; esac`,
].join('; ');

/**
 * sh: prints `MOSHCTL-SERVER BOUND ADDRESS`, the address `mosh-server -s`
 * binds: the third word of $SSH_CONNECTION, without an IPv4-mapped prefix,
 * as mosh-server.cc's get_SSH_IP reads it. Nothing without SSH_CONNECTION
 * (mosh-server then binds every address).
 */
const BOUND_SH = [
  'set -- $SSH_CONNECTION',
  'a=${3-}',
  'case "$a" in [:][:][fF][fF][fF][fF][:]?*) a=${a#???????};; esac',
  `[ -z "$a" ] || echo "${BOUND_MARK} $a"`,
].join('; ');

/**
 * What mosh-server runs for mosh.session: attach to the host's session, or
 * create it (running `command`, else the login shell). Other clients still
 * attached (a mosh-server whose client was lost) are detached, so that
 * mosh-server ends by itself instead of waiting for its network timeout.
 */
function keptSessionArgv(session: KeptSession, command: readonly string[]): string[] {
  const tail = command.length > 0 ? ['--', ...command] : [];
  return session.program === 'tmux'
    ? ['tmux', 'new-session', '-A', '-D', '-s', session.name, ...tail]
    : // -D -RR: reattach here, detaching it elsewhere, else create it (screen's "attach here and now").
      ['screen', '-D', '-RR', '-S', session.name, ...tail];
}

const EXITED = /^MOSHCTL-SERVER EXIT (\d+)$/;
const STARTED_MARK = 'MOSHCTL-SERVER STARTED';
/** In the keeper shell's command line (its script) and its first line. */
export const KEEPER_MARK = 'MOSHCTL-SERVER KEEPER';
const DETACHED_AT = "'[mosh-server detached, pid = '";

/**
 * What moshctl sends the keeper once its record names mosh-server. Until
 * then a keeper whose channel closes stops mosh-server: nobody may be left to
 * know of it (moshctl was killed, or the connection died, while it started).
 */
export const KEPT = 'KEPT';

/** The keeper shell, from its first line: its pid, and its start when the host has /proc. */
export function parseKeeper(line: string): { pid: number; started?: string } | undefined {
  const m = new RegExp(`^${KEEPER_MARK} (\\d{1,10})(?: (\\d{1,20}))?\\s*$`).exec(line);
  const pid = m ? Number(m[1]) : NaN;
  if (!(pid >= 2)) return undefined;
  const started = checkStarted(m?.[2]);
  return { pid, ...(started ? { started } : {}) };
}

/**
 * Stops a keeper and every process under it (a `mosh-server new` that hangs,
 * or one whose detached server has not been reported yet), if that pid is
 * still a keeper (and started then, when `started` is given). The keeper
 * itself, told by TERM, stops the mosh-server it hears of once its `mosh-server
 * new` returns. By pid, never by process group: the group may hold more than
 * this channel. Prints stopped, gone, other, or unknown when this host cannot
 * read command lines.
 */
export function stopKeeperCommand(pid: number, started?: string): string {
  const script = [
    PROC_SH,
    `p=${checkPid(pid)} w=${checkStarted(started) ?? "''"}`,
    `alive "$p"; case $? in 1) echo gone; exit 0;; 2) echo unknown; exit 0;; esac`,
    `ours "$p" "$w" ${shellQuote(KEEPER_MARK)}; case $? in 1) echo other; exit 0;; 2) echo unknown; exit 0;; esac`,
    // Every descendant of p, from the pid/ppid table.
    `d=$(pstable | awk -v r="$p" '{ up[$1] = $2 } END { for (x in up) { y = x; n = 0; while ((y in up) && y != r && y > 1 && n++ < 64) y = up[y]; if (y == r && x != r) print x } }')`,
    'kill -TERM $d "$p" 2>/dev/null',
    'echo stopped',
  ].join('; ');
  return `${SH} -c ${shellQuote(script)}`;
}

/**
 * mosh-server started in a channel that stays open afterwards, so teardown
 * stops it without a new exec. The channel carries the keeper's pid and
 * start, then mosh-server's own output (both streams, the key among it:
 * printf is a shell builtin, so the key is in no process's argv), then
 * `MOSHCTL-SERVER EXIT CODE`. Then moshctl sends lines: KEPT once its record
 * names mosh-server, and later mosh-server's pid to stop it as stopByPidCommand
 * would (answered with stopped, gone, other or unknown).
 *
 * Nothing it started outlives what can still stop it: a mosh-server nobody
 * heard of (its lines could not get out, or the channel closed before KEPT)
 * is stopped here; the keeper itself ends within a second of mosh-server, and
 * when its channel closes (mosh-server, recorded, lives on: a roam only
 * takes the connection); a TERM (stopKeeperCommand) stops mosh-server once
 * `mosh-server new` has returned, and the keeper with it.
 *
 * It is the target's only exec at set-up, and it goes through the user's
 * login shell on purpose, as mosh's own wrapper runs `mosh-server new` over
 * ssh: the session's shell and command inherit what a remote command of the
 * user gets (PATH and the rest from ~/.bashrc or ~/.zshenv). That shell's
 * start is paid once; the connection's session process is found in the same
 * exec (SESSION_REPORT_SH), while mosh-server starts.
 */
export function moshServerKeptCommand(step: Parameters<typeof moshServerCommand>[0]): string {
  const stop = stopPidScript('mosh-server');
  // One line, `;`-joined, for login shells that take no newline inside quotes
  // (csh); `&` ends a command by itself, so no `;` follows it.
  const script = [
    SESSION_MARK_SH,
    // A write to a channel whose connection died fails instead of killing the shell.
    "trap '' PIPE",
    // A stop while mosh-server starts waits for its pid (sh runs the trap once `out=` returns).
    "trap 'z=1' TERM",
    PROC_SH,
    // Its own pid first: a mosh-server that hangs before saying anything is stopped with it.
    `echo "${KEEPER_MARK} $$ $(startof $$)"`,
    ...(step.bind.mode === 'ssh' ? [BOUND_SH] : []),
    // The connection's session process (sshd-session.ts), found while mosh-server starts: this
    // exec is the target's only one at set-up, so no other needs to ask (SshdSessions.tell).
    `{ ${SESSION_REPORT_SH}; } & q_r=$!`,
    `out=$(${moshServerCommand(step)} 2>&1)`,
    'c=$?',
    // Its line before mosh-server's: the step ends at the EXIT line.
    'wait "$q_r" 2>/dev/null',
    // Not found (127) or cannot run (126): look where it usually is, in this same exec.
    LOCATE_SH,
    `s=\${out##*${DETACHED_AT}}`,
    "s=${s%%']'*}",
    `case "$out" in *${DETACHED_AT}*) ;; *) s=;; esac`,
    `case "$s" in ''|*[!0-9]*) s=;; esac`,
    // The pid it started, so no start to compare: `w` stays empty.
    `halt() { [ -z "$s" ] || { p=$s; w=; ${stop}; } >/dev/null 2>&1; exit 0; }`,
    '[ -z "$z" ] || halt',
    // Its start, so a stop by pid over another connection never hits a reused pid.
    `{ printf '%s\\n' "$out" && { [ -z "$s" ] || echo "${STARTED_MARK} $(startof "$s")"; } && echo "MOSHCTL-SERVER EXIT $c"; } || halt`,
    '[ -n "$s" ] || exit 0',
    // An asynchronous list reads /dev/null unless told otherwise: fd 3 is the channel.
    'exec 3<&0',
    `{ k=; while IFS= read -r p; do case "$p" in ${KEPT}) k=1;; "$s") w=; ${stop}; exit 0;; *) break;; esac; done; [ -n "$k" ] || halt; } <&3 & r=$!; exec 3<&-`,
    // Each second: a keeper outlives neither mosh-server nor its channel (the reader above)
    // by more. `alive` counts a zombie as gone (an init may take seconds to reap one), and
    // says 2 (cannot tell) on a host without /proc or ps, where kill -0 still finds it.
    'while [ -z "$z" ]; do alive "$s"; [ $? -ne 1 ] || break; alive "$r"; [ $? -ne 1 ] || break; sleep 1; done',
    'kill "$r" 2>/dev/null',
    '[ -z "$z" ] || halt',
  ].join('; ');
  return `${SH} -c ${shellQuote(script)}`;
}

/** The start in `MOSHCTL-SERVER STARTED …`, when it is one a command may carry (see STARTED in processes.ts). */
export function parseServerStarted(line: string): string | undefined {
  if (!line.startsWith(`${STARTED_MARK} `)) return undefined;
  return checkStarted(line.slice(STARTED_MARK.length + 1).trim());
}

/** The address in `MOSHCTL-SERVER BOUND ADDRESS`, when it is an IP literal (see BOUND_SH). */
export function parseServerBound(line: string): string | undefined {
  if (!line.startsWith(`${BOUND_MARK} `)) return undefined;
  const address = line.slice(BOUND_MARK.length + 1).trim();
  return isIP(address) !== 0 ? address : undefined;
}

/** A mosh-server found where a non-interactive PATH did not reach (see LOCATE_SH). */
export interface ServerFound {
  /** login: a login shell's `command -v`; place: one of USUAL_PLACES. */
  how: 'login' | 'place';
  path: string;
}

export function parseServerFound(line: string): ServerFound | undefined {
  const m = new RegExp(`^${FOUND_MARK} (login|place) (/[ -~]{1,250})$`).exec(line.trimEnd());
  return m ? { how: m[1] as ServerFound['how'], path: m[2] ?? '' } : undefined;
}

/** The exit code in `MOSHCTL-SERVER EXIT CODE`: mosh-server's parent has exited and said all it will. */
export function parseServerExit(line: string): number | undefined {
  const m = EXITED.exec(line);
  return m ? Number(m[1]) : undefined;
}

export interface MoshConnect {
  port: number;
  /** The session key: goes to mosh-client's environment and nowhere else. */
  key: string;
  pid: number;
}

const CONNECT = /^MOSH CONNECT (\d+) ([A-Za-z0-9/+]{22})\s*$/m;
const DETACHED = /\[mosh-server detached, pid = (\d+)\]/;

/** Parses mosh-server's output; undefined until both the connect line and the pid are there. */
export function parseMoshServerOutput(stdout: string, stderr: string): MoshConnect | undefined {
  const c = CONNECT.exec(stdout) ?? CONNECT.exec(stderr);
  const d = DETACHED.exec(stderr) ?? DETACHED.exec(stdout);
  if (!c || !d) return undefined;
  return { port: Number(c[1]), key: c[2] ?? '', pid: Number(d[1]) };
}

/**
 * mosh-server that cannot bind the address it was given (-s or -i) says so
 * and binds every IPv4 address instead (network.cc tries the address, then
 * any): the session may still work, but not where it was meant to listen.
 */
export function moshServerBindFallback(output: string): string | undefined {
  const m = /^Error binding to IP (\S{1,64}): ([ -~]{1,200}?)\s*$/m.exec(output);
  if (!m) return undefined;
  return `mosh-server could not listen on ${m[1]} (${m[2]}) and listens on every IPv4 address instead; set mosh.bind_server (or --bind-server) to ssh or to an address that host has`;
}

/** Masks a `MOSH CONNECT` line's key in text that may reach a message (stderr of a wrapper that merges streams). */
export function redactKey(text: string): string {
  return text.replace(/(MOSH CONNECT \d+ )[A-Za-z0-9/+]{22}/g, '$1<key>');
}

/** mosh-server new neither printed MOSH CONNECT nor exited within `ms` (it was stopped). */
export function moshServerSilent(ms: number, stderr: string): { message: string; hint: string } {
  const last = stderr.trim().split('\n').filter(Boolean).pop();
  return {
    message: `mosh-server printed no MOSH CONNECT line within ${duration(ms)} and was stopped${last ? `; its last words: ${last}` : ''}`,
    hint: 'run "mosh-server new" on that host by hand: a wrapper script, or a login script that waits for input, can do this',
  };
}

/** What was asked for and what was found when mosh-server did not start (see LOCATE_SH). */
export interface ServerLookup {
  /** mosh.server (or --server): `mosh-server` unless set. */
  program: string;
  found: readonly ServerFound[];
}

/**
 * Why mosh-server did not start, from its exit code and stderr, never from its
 * stdout (which may hold the key).
 */
export function moshServerFailure(
  code: number | null,
  stderr: string,
  lookup: ServerLookup = { program: 'mosh-server', found: [] },
): { message: string; hint: string } {
  const keeper = new RegExp(`${KEEPER_MISSING} (tmux|screen)`).exec(stderr)?.[1];
  if (keeper) {
    return {
      message: `${keeper} is not installed (or cannot run) there, and mosh.session: ${keeper} runs the shell in it`,
      hint: `install ${keeper} on that host (Debian/Ubuntu: apt install ${keeper}; Fedora: dnf install ${keeper}), or set mosh.session: none for it`,
    };
  }
  if (code === 127 || code === 126 || /mosh-server.*(not found|No such file)/.test(stderr)) {
    const named = lookup.program !== 'mosh-server';
    const what = named ? `mosh.server ${lookup.program}` : 'mosh-server';
    const last = stderr.trim().split('\n').filter(Boolean).pop();
    return {
      message:
        code === 126
          ? `${what} is there but cannot run${last ? `: ${last}` : ''}`
          : named
            ? `${what} is not there (or not on the PATH of a non-interactive ssh session)`
            : 'mosh-server is not installed (or not on the PATH of a non-interactive ssh session)',
      hint: foundHint(lookup.found),
    };
  }
  if (/UTF-8 native locale|locale requested by .* isn't available|Unknown locale/i.test(stderr)) {
    return {
      message: 'mosh-server found no UTF-8 locale it can use there (mosh.locale)',
      hint: 'set mosh.locale to one that `locale -a` lists on that host (C.UTF-8 on most), or install it (Debian: the locales package, dpkg-reconfigure locales)',
    };
  }
  if (/bind|Address already in use|no port/i.test(stderr)) {
    return {
      message: 'mosh-server found no free UDP port in its range',
      hint: 'widen mosh.server_ports in moshproxy.yaml, or stop old sessions (moshctl down --all)',
    };
  }
  const last = stderr.trim().split('\n').filter(Boolean).pop() ?? 'no output';
  if (code === 0) {
    return {
      message: `mosh-server exited without printing its MOSH CONNECT line; its last words: ${last}`,
      hint: 'run "mosh-server new" on that host by hand: a wrapper script or an old or broken mosh can do this',
    };
  }
  return {
    message: `mosh-server exited with code ${code ?? 'none'}: ${last}`,
    hint: 'run "mosh-server new" on that host by hand to see why; mosh needs a UTF-8 locale (mosh.locale)',
  };
}

/** Where mosh-server was found, and the setting that names it; else how to get one. */
function foundHint(found: readonly ServerFound[]): string {
  const paths = [
    ...new Set(
      [...found].sort((a, b) => (a.how === b.how ? 0 : a.how === 'login' ? -1 : 1)).map((f) => f.path),
    ),
  ];
  const first = paths[0];
  if (first === undefined) {
    const places = USUAL_PLACES.map((d) => d.replace('$HOME', '~')).join(', ');
    return `install mosh on that host (Debian/Ubuntu: apt install mosh; Fedora: dnf install mosh; macOS: brew install mosh), or set mosh.server (or up --server) to its path: neither a login shell there nor ${places} has one`;
  }
  const how = found.some((f) => f.path === first && f.how === 'login')
    ? ' (a login shell finds it there)'
    : '';
  const others = paths.length > 1 ? ` (also there: ${paths.slice(1).join(', ')})` : '';
  return `found at ${first}${how}: set mosh.server: ${first} for that host in moshproxy.yaml, or run up --server ${shellQuote(first)}${others}`;
}

// The command lines moshctl gives the user's own `ssh`: one ControlMaster per
// hop, and mux clients that run commands through a master. Every value
// moshctl resolved for a host is passed with -o, and -o values win over
// ssh_config (OpenSSH keeps the first value it obtains), so what moshctl
// shows is what runs. Pure: no processes, no files.

import type { SshHost } from '../config/types.js';
import { UserError } from '../errors.js';

/** ssh asks the server to check it is alive this often before giving up (ServerAliveCountMax). */
export const SERVER_ALIVE_COUNT_MAX = 3;

/** What a path put into a shell command line (a ProxyCommand) may contain: nothing the shell would read (`%` is doubled for ssh, and plain to the shell). */
const SHELL_SAFE = /^[A-Za-z0-9_./,:@%+=-]+$/;

export function isShellSafe(s: string): boolean {
  return SHELL_SAFE.test(s);
}

/**
 * OpenSSH expands %-tokens (and ${VAR}) in IdentityFile, CertificateFile,
 * UserKnownHostsFile, IdentityAgent, ControlPath and ProxyCommand; `%%` is a
 * literal `%`.
 */
export function escapeTokens(s: string): string {
  return s.replaceAll('%', '%%');
}

/**
 * One argument of an ssh_config line given with -o: double-quoted when it has
 * spaces or other characters ssh's line splitter treats specially. ssh has no
 * escape for a double quote or backslash inside quotes, so those are refused.
 */
export function configArg(value: string, what: string): string {
  if (/["\\\p{Cc}]/u.test(value)) {
    throw UserError.one(
      `${what} "${value.replace(/\p{Cc}/gu, '?')}" contains a double quote, backslash or control character, which cannot be passed to ssh`,
      'rename the file, or point the setting at a path without those characters',
    );
  }
  return /^[^\s'#=]+$/.test(value) ? value : `"${value}"`;
}

/** A list of files as one ssh_config value (UserKnownHostsFile, GlobalKnownHostsFile); empty means none. */
export function fileListArg(files: readonly string[], what: string, tokens: boolean): string {
  if (files.length === 0) return '/dev/null';
  return files.map((f) => configArg(tokens ? escapeTokens(f) : f, what)).join(' ');
}

/** Where hop `index`'s control socket lives: short, since a Unix socket path is limited to ~104 bytes. */
export function controlPath(controlDir: string, index: number): string {
  return `${controlDir}/${index}`;
}

/** Where hop `index`'s master (and the stdio forward that reaches it) log, with `ssh -E`. */
export function logPath(controlDir: string, index: number): string {
  return `${controlDir}/${index}.log`;
}

/**
 * Options every mux client (a command run through a master, or the -W hop to
 * the next host) gets. `-F /dev/null`: it talks only to its master, so no
 * ssh_config can change it, and no `Match exec` runs once per command.
 * ProxyCommand=false: when the master is gone, ssh would otherwise fall back
 * to a direct connection of its own (with ControlMaster=no it does); this
 * makes that fallback fail at once. BatchMode: a mux client never prompts.
 */
function muxClientOptions(controlSocket: string): string[] {
  return [
    '-F',
    '/dev/null',
    '-S',
    escapeTokens(controlSocket),
    '-o',
    'ControlMaster=no',
    '-o',
    'ProxyCommand=false',
    '-o',
    'BatchMode=yes',
  ];
}

/**
 * ProxyCommand of an inner hop: a stdio forward through the previous hop's
 * master (what ProxyJump does, reusing that connection). ssh runs it through
 * the shell after expanding %h and %p, so every path in it must be shell-safe
 * and have its `%` doubled; the brackets let %h be an IPv6 address and are
 * quoted so the shell does not read them as a pattern. It logs where the hop's
 * master logs, so a refused forward is explained in one place.
 */
export function proxyCommandVia(
  sshPath: string,
  prevControlSocket: string,
  prevSshName: string,
  log: string,
  ownGroup?: OwnGroup,
): string {
  for (const [what, value] of [
    ['the ssh program path', sshPath],
    ['the control socket path', prevControlSocket],
    ['the log path', log],
  ] as const) {
    if (!isShellSafe(value)) throw new Error(`bug: ${what} ${value} is not shell-safe`);
  }
  const name = isShellSafe(prevSshName) ? prevSshName : `'${prevSshName.replaceAll("'", `'\\''`)}'`;
  return [
    ...ownGroupPrefix(ownGroup),
    escapeTokens(sshPath),
    '-E',
    escapeTokens(log),
    ...muxClientOptions(prevControlSocket),
    '-W',
    "'[%h]:%p'",
    escapeTokens(name),
  ].join(' ');
}

/** A program that starts a command in a process group of its own: util-linux's setsid, else perl. */
export type OwnGroup = 'setsid' | 'perl';

const PERL_OWN_GROUP = 'setpgrp(0, 0); exec {$ARGV[0]} @ARGV or die "$ARGV[0]: $!\\n"';

/**
 * The -W hop to the next host is a mux client, and OpenSSH's mux client
 * catches INT, HUP and TERM whatever it inherited (mux.c), and ends its
 * forward on them. In the terminal's foreground process group a Ctrl-C, or
 * the terminal closing, would so drop every hop behind the first just as
 * moshctl starts its teardown, which must then connect again (slowly, and
 * with no terminal for a prompt). In a group of its own no terminal signal
 * reaches it; it still ends with its master (EOF), and never prompts (BatchMode).
 */
export function ownGroupPrefix(how: OwnGroup | undefined): string[] {
  if (how === 'setsid') return ['setsid'];
  if (how === 'perl') return ['perl', '-e', `'${PERL_OWN_GROUP}'`];
  return [];
}

const PERL_RESET = '$SIG{HUP} = $SIG{INT} = "DEFAULT"; exec {$ARGV[0]} @ARGV or die "$ARGV[0]: $!\\n"';

/** A program that starts a command with HUP and INT at their defaults: coreutils' env, else perl. */
export type SignalReset = 'env' | 'perl';

/**
 * A master's ssh starts with HUP and INT ignored (see master.ts), and a
 * ProxyCommand would inherit that: ssh's SIGHUP when it exits, its only way
 * to end the command, would then leave a broker that hangs running for good.
 * So the command starts through a program that sets both back to their
 * defaults and execs it. ssh runs a ProxyCommand as `exec COMMAND` in the
 * user's shell, which still parses COMMAND's words, quotes and redirections
 * as before; only a leading `exec` of its own is dropped.
 */
export function proxyWithSignals(command: string, reset: SignalReset | undefined): string {
  if (!reset) return command;
  const own = command.replace(/^\s*exec\s+/, '');
  return reset === 'env' ? `env --default-signal=HUP,INT ${own}` : `perl -e '${PERL_RESET}' ${own}`;
}

export interface MasterArgvInput {
  host: SshHost;
  /** Position in the chain, client side first. */
  index: number;
  controlDir: string;
  /** Absolute path of the ssh program, for the ProxyCommand of inner hops. */
  sshPath: string;
  /** The hop before this one, whose master the ProxyCommand goes through. */
  prev: SshHost | undefined;
  sshConfigFile?: string | undefined;
  /** How the first hop's ProxyCommand gets HUP and INT back (see proxyWithSignals); undefined: as it is. */
  signalReset?: SignalReset | undefined;
  /** How an inner hop's -W ProxyCommand leaves the terminal's process group (see ownGroupPrefix); undefined: it stays. */
  ownGroup?: OwnGroup | undefined;
  /**
   * IdentityAgent for a host that names none, when the caller chose one
   * (ConnectOptions.agent): a socket, or 'none'. Undefined leaves ssh's own default.
   */
  defaultAgent?: string | undefined;
  /**
   * This master may forward the agent (ConnectOptions.agentFor): ForwardAgent
   * yes. Every other master gets ForwardAgent no, written out, since ssh_config
   * may say yes for `Host *`; a mux client's -A then gets nothing there.
   */
  forwardAgent?: boolean | undefined;
}

function checkName(host: SshHost): void {
  // A leading '-' would make ssh read the name as an option.
  if (!host.ssh_name || host.ssh_name.startsWith('-')) {
    throw UserError.one(
      `${host.name}: "${host.ssh_name}" cannot be given to ssh as a host name`,
      `give ${host.name} a name or address that does not start with "-"`,
    );
  }
}

/** argv (after the program) of the ControlMaster for hop `index`. */
export function masterArgv(m: MasterArgvInput): string[] {
  const { host } = m;
  checkName(host);
  const o = (opt: string): string[] => ['-o', opt];
  const agent = host.identity_agent ?? m.defaultAgent;
  let proxy: string;
  if (m.prev) {
    const via = controlPath(m.controlDir, m.index - 1);
    proxy = proxyCommandVia(m.sshPath, via, m.prev.ssh_name, logPath(m.controlDir, m.index), m.ownGroup);
  }
  // `none` also switches off a ProxyJump ssh_config may have for the name: moshctl resolved none.
  else proxy = host.proxy_command ? proxyWithSignals(host.proxy_command, m.signalReset) : 'none';
  return [
    '-M',
    '-N',
    '-S',
    escapeTokens(controlPath(m.controlDir, m.index)),
    // Logs to a file moshctl reads, so stderr carries only what ssh writes there
    // directly (a banner, a ProxyCommand's own output), which is shown while
    // the hop connects and kept quiet once mosh-client owns the terminal.
    '-E',
    logPath(m.controlDir, m.index),
    ...o('ControlMaster=yes'),
    ...o('ControlPersist=no'),
    ...(m.sshConfigFile ? ['-F', m.sshConfigFile] : []),
    '-l',
    host.user,
    '-p',
    String(host.port),
    ...o(`HostName=${host.address}`),
    ...host.identity_files.flatMap((f) => o(`IdentityFile=${configArg(escapeTokens(f), 'IdentityFile')}`)),
    ...host.certificate_files.flatMap((f) =>
      o(`CertificateFile=${configArg(escapeTokens(f), 'CertificateFile')}`),
    ),
    ...o(`UserKnownHostsFile=${fileListArg(host.known_hosts, 'known_hosts', true)}`),
    // GlobalKnownHostsFile is the one file option without %-tokens.
    ...o(`GlobalKnownHostsFile=${fileListArg(host.global_known_hosts, 'global known_hosts', false)}`),
    ...(host.host_key_alias ? o(`HostKeyAlias=${configArg(host.host_key_alias, 'HostKeyAlias')}`) : []),
    ...o(`StrictHostKeyChecking=${host.host_key_policy === 'accept-new' ? 'accept-new' : 'yes'}`),
    ...o(`HashKnownHosts=${host.hash_known_hosts ? 'yes' : 'no'}`),
    ...(agent ? o(`IdentityAgent=${agentArg(agent)}`) : []),
    // ssh forwards the agent it uses itself (IdentityAgent, which it exports as SSH_AUTH_SOCK).
    ...o(`ForwardAgent=${m.forwardAgent ? 'yes' : 'no'}`),
    ...o(`ConnectTimeout=${host.connect_timeout}`),
    ...o(`ServerAliveInterval=${host.server_alive_interval}`),
    ...o(`ServerAliveCountMax=${SERVER_ALIVE_COUNT_MAX}`),
    ...o('ClearAllForwardings=yes'),
    // Prompts (passphrases, passwords, codes) are ssh's own, on the terminal.
    ...o('BatchMode=no'),
    ...o(`ProxyCommand=${proxy}`),
    // VERBOSE: the `Authenticated to NAME ([IP]:PORT)` line (the address mosh-client
    // needs), and a hop's "open failed" lines at every hop whatever ssh_config's
    // LogLevel says. The log is read by moshctl, never shown as it comes.
    ...o('LogLevel=VERBOSE'),
    host.ssh_name,
  ];
}

function agentArg(agent: string): string {
  if (agent === 'none' || agent === 'SSH_AUTH_SOCK') return agent;
  return configArg(escapeTokens(agent), 'IdentityAgent');
}

/**
 * argv (after the program) running `command` through hop's master. No pty (-T),
 * as the ssh2 client: the remote processes must outlive the connection. -a -x:
 * a mux client asks the master to forward the agent and X11 when its options
 * say so, and nothing moshctl runs needs either. `forwardAgent` asks for the
 * agent instead (-A); the master forwards it only if its own ForwardAgent is
 * yes (masterArgv's forwardAgent).
 */
export function execArgv(
  controlSocket: string,
  sshName: string,
  command: string,
  opts: { forwardAgent?: boolean } = {},
): string[] {
  return [
    ...muxClientOptions(controlSocket),
    '-T',
    ...(opts.forwardAgent ? ['-A', '-o', 'ForwardAgent=yes'] : ['-a']),
    '-x',
    '-o',
    'RemoteCommand=none',
    '-o',
    'LogLevel=ERROR',
    sshName,
    command,
  ];
}

/**
 * argv of a stdio forward through hop's master (`-W HOST:PORT`, see
 * forward-spec.ts): the mux client hands its stdin and stdout to the master,
 * which joins them to a direct-tcpip channel, so the bytes never pass through
 * the mux client. LogLevel DEBUG1, not ERROR: the master answers the mux
 * client only once the server confirmed or refused the channel, and the mux
 * client says which only at that level (`master session id: N` on success;
 * a refusal is a fatal error, exit 255).
 */
export function stdioForwardArgv(controlSocket: string, sshName: string, target: string): string[] {
  return [
    ...muxClientOptions(controlSocket),
    '-T',
    '-a',
    '-x',
    '-o',
    'LogLevel=DEBUG1',
    '-W',
    target,
    sshName,
  ];
}

/**
 * argv asking hop's master to add a remote forward (`-O forward -R SPEC`, see
 * forward-spec.ts). It exits once the server agreed or refused; with port 0
 * it prints the port the server chose on stdout.
 */
export function remoteForwardArgv(controlSocket: string, sshName: string, spec: string): string[] {
  return [...muxClientOptions(controlSocket), '-o', 'LogLevel=ERROR', '-O', 'forward', '-R', spec, sshName];
}

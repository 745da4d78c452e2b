// What the runner needs from an SSH client: a chain of connections, one per
// hop, that runs commands on any host of the route. Two implementations: ssh2
// (src/ssh, built in) and the user's own OpenSSH (src/openssh, ControlMaster
// per hop). The runner, teardown and status only ever see this interface.
import type { Duplex } from 'node:stream';
import type { SshHost } from '../config/types.js';
import type { Endpoint } from '../forward/types.js';

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** null when the command was killed by a signal or is still running. */
  code: number | null;
}

export type CloseListener = (host: string, error: Error | undefined) => void;

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. Never appears in messages. */
  stdin?: string;
  timeoutMs?: number;
}

/**
 * A command kept running with stdin and stdout open as a line protocol (a
 * relay's control channel). When the connection drops the command goes on on
 * its own; the channel just closes.
 */
export interface LineChannel {
  /** The next line of stdout (lines are queued as they come); undefined once the channel closed and all were read. Rejects after timeoutMs. */
  nextLine(timeoutMs: number): Promise<string | undefined>;
  /** Writes one line to the command's stdin; nothing once closed. */
  send(line: string): void;
  /** Ends our side: the command reads EOF. */
  end(): void;
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** The last few KB the command wrote on stderr, for messages. */
  stderr(): string;
}

/**
 * A command kept running with stdin and stdout as raw bytes (the tcp
 * transport's forwarder: datagrams in frames). Closes when the command exits
 * or the connection drops.
 */
export interface ByteChannel {
  write(data: Buffer | string): void;
  /** Every chunk of stdout, as it comes; only one listener. */
  onData(cb: (chunk: Buffer) => void): void;
  /** Ends our side: the command reads EOF. */
  end(): void;
  readonly closed: Promise<void>;
  readonly isClosed: boolean;
  /** The last few KB the command wrote on stderr, for messages. */
  stderr(): string;
}

export interface ChannelOptions {
  stdin: string;
  /**
   * Ask `host` to forward this machine's ssh-agent to this command (ssh -A,
   * for this channel only): sshd sets SSH_AUTH_SOCK for it. Only honoured on
   * the host named by ConnectOptions.agentFor, and never asked otherwise.
   */
  forwardAgent?: boolean;
}

/** What a remote forward reports of the connections it carries (for status). */
export interface RemoteForwardEvents {
  /** A connection came in and was joined to `to` here. */
  onConnection?: () => void;
  /** A connection ended; `broken` when the chain under it went, not one of its ends. */
  onClosed?: (broken: boolean) => void;
  /** A connection could not be joined to `to` here (refused, no such socket). */
  onError?: (why: string) => void;
}

export interface RemoteChain {
  /** The route this chain reaches, client side first. */
  readonly hostNames: string[];
  /**
   * The numeric address (IPv4 or IPv6) the connection to the first hop reached:
   * what mosh-client is given, since it takes no names. Undefined when the
   * first hop was reached through a ProxyCommand.
   */
  readonly reachedAddress: string | undefined;
  /**
   * This machine's address the first connection left from, when known (ssh2's
   * socket; OpenSSH's master socket on Linux, read from /proc; never through a
   * ProxyCommand): once it is gone from this machine, the chain is dead for
   * sure and need not be probed.
   */
  readonly localAddress?: string | undefined;
  /** Run `command` on `host` and wait for it to end. The command may appear in error messages; stdin never does. */
  exec(host: string, command: string, opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Run `command` and resolve as soon as `until(stdout so far)` is true or the
   * command ends, whichever comes first: for reading a ready line while the
   * process goes on to daemonize.
   */
  execUntil(
    host: string,
    command: string,
    opts: ExecOptions & { until: (stdoutSoFar: string) => boolean; timeoutMs: number },
  ): Promise<ExecResult>;
  /**
   * Starts `command` on `host` with `stdin` written first, and keeps the
   * channel open: its stdout comes line by line, lines can be sent to it.
   */
  openChannel(host: string, command: string, opts: ChannelOptions): Promise<LineChannel>;
  /** Like openChannel, with stdout and stdin as raw bytes after `stdin` was written. */
  openStream(host: string, command: string, opts: { stdin: string }): Promise<ByteChannel>;
  /**
   * A stream to `to` opened by `host`'s sshd (ssh's direct-tcpip, or
   * direct-streamlocal for a path): what -L and -D carry. A name in `to` is
   * resolved on `host`. Rejects, naming `host` and `to`, when the server
   * refuses (administratively prohibited, connect failed) or within `timeoutMs`.
   */
  openConnection(host: string, to: Endpoint, opts: { timeoutMs: number }): Promise<Duplex>;
  /**
   * Asks `host`'s sshd to listen at `at` (tcpip-forward, or
   * streamlocal-forward for a path: -R) and to send each connection it accepts
   * back through this chain, where it is connected to `to` on this machine.
   * Resolves once the server agreed, with the port it bound (the chosen one
   * when `at.port` is 0); rejects with the server's refusal. Lives as long as
   * the connection to `host`: a new chain must ask again.
   */
  remoteForward(
    host: string,
    at: { host: string; port: number } | { path: string },
    to: Endpoint,
    events?: RemoteForwardEvents,
  ): Promise<{ port?: number }>;
  /**
   * Called when a connection drops while the chain is open (not on close());
   * when a hop drops, every hop behind it is reported too. Returns an unsubscribe.
   */
  onClose(cb: CloseListener): () => void;
  /** Drop every connection at once, without a goodbye (the network path is gone). */
  destroy(): void;
  /** Close every connection, target first. Safe to call more than once. */
  close(): Promise<void>;
}

/** Asks the person at the terminal: passwords, one-time codes, passphrases. */
export interface Prompter {
  /** Whether there is a terminal to ask on. */
  readonly interactive: boolean;
  /**
   * Shows `prompt` and reads one line; `echo: false` hides what is typed.
   * Rejects without a terminal, and with the signal's reason once `signal`
   * aborts (the hop asking is gone: nobody waits for the answer).
   */
  ask(prompt: string, echo: boolean, signal?: AbortSignal): Promise<string>;
  /** Shows a line of text from a server (keyboard-interactive instructions). */
  say(text: string): void;
}

export interface ConnectOptions {
  /** Called as each hop starts connecting, for progress output. */
  onHop?: (host: string) => void;
  /**
   * Called as each hop is open, with the chain (the same object the promise
   * resolves with) reaching the first `hops` hosts: commands on them may run
   * while later hops still connect. If a later hop fails, the chain closes.
   */
  onReady?: (chain: RemoteChain, hops: number) => void;
  /** Stops connecting: open hops are dropped and the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Where login prompts go; without one, logins that need a person fail with a clear message. */
  prompter?: Prompter;
  /** `ssh -F FILE` instead of ~/.ssh/config (MOSHCTL_SSH_CONFIG); openssh only. */
  sshConfigFile?: string;
  /** ssh-agent socket when a host names none; defaults to $SSH_AUTH_SOCK. */
  agent?: string | undefined;
  /**
   * The one host (the target) channels may ask to forward the agent to
   * (ChannelOptions.forwardAgent); every other hop is set up never to accept
   * it, whatever ssh_config says. Undefined: no host gets the agent.
   */
  agentFor?: string | undefined;
}

export type ConnectChain = (hops: SshHost[], opts?: ConnectOptions) => Promise<RemoteChain>;

// Agent forwarding (-A) kept across chains. sshd puts a forwarded agent at a
// path of its own per connection (/tmp/ssh-XXXX/agent.PID) and only for the
// session that asked; the shell mosh-server runs is not that session, and
// outlives it. So the session's shell gets a stable path (the server step's
// agentSocket), and on each chain a channel that asked for the agent points
// that path at its socket and stays open, since sshd removes the socket when
// the channel closes. While the chain is down the link points at nothing and
// ssh-add says it cannot connect, which is the truth.
import { EnvError } from '../../errors.js';
import type { ChainConsumer } from '../kept-chain.js';
import { SH, shellJoin } from '../../remote/shell.js';
import { duration } from '../../transport/errors.js';
import { awaitLine } from '../../transport/line-channel.js';
import type { LineChannel, RemoteChain } from '../../transport/types.js';
import {
  AGENT_LINK_SH,
  AGENT_UNLINK_SH,
  checkAgentSocket,
  parseAgentLine,
} from '../../forward/agent-link.js';

/** How long the link script may take to say it linked (a slow login shell included). */
export const AGENT_READY_MS = 15_000;

/** The command the agent channel runs; the stable path comes as its first line of stdin. */
export const AGENT_LINK_COMMAND = `${SH} -c ${shellJoin([AGENT_LINK_SH, 'moshctl-agent'])}`;

/** What the session record keeps of it (SessionRecord.agent). */
export interface AgentStatus {
  host: string;
  socket: string;
  up: boolean;
  lastError?: string;
}

export interface AgentLinkOptions {
  /** AGENT_READY_MS unless set. */
  readyMs?: number;
  /** Called on every change of status(); the owner throttles (the record is saved at most every 0.5 s). */
  onChange?: () => void;
}

/**
 * Removes the stable link (and its directory when empty) over a fresh exec:
 * teardown runs it from `down`, maybe in another process, after the channel is gone.
 */
export function unlinkAgentCommand(socket: string): string {
  return `${SH} -c ${shellJoin([AGENT_UNLINK_SH, 'moshctl-agent-unlink', checkAgentSocket(socket)])}`;
}

export class AgentLink implements ChainConsumer {
  readonly name = 'agent';
  readonly host: string;
  readonly socket: string;
  /** The channel holding the agent on the chain last attached. */
  private current: { chain: RemoteChain; channel: LineChannel } | undefined;
  private readonly gone = new WeakSet<RemoteChain>();
  private up = false;
  private lastError: string | undefined;
  private closed = false;

  /** `step`: the plan's agent step (its host is the target; socket `~/`-relative there). */
  constructor(
    step: { host: string; socket: string },
    private readonly opts: AgentLinkOptions = {},
  ) {
    this.host = step.host;
    this.socket = checkAgentSocket(step.socket);
  }

  /** Opens the agent channel on the new chain; resolves once the link points at its socket. */
  async attach(chain: RemoteChain): Promise<void> {
    if (this.closed) return;
    const previous = this.current;
    const readyMs = this.opts.readyMs ?? AGENT_READY_MS;
    let channel: LineChannel | undefined;
    let answer: ReturnType<typeof parseAgentLine>;
    try {
      channel = await chain.openChannel(this.host, AGENT_LINK_COMMAND, {
        stdin: `${this.socket}\n`,
        forwardAgent: true,
      });
      answer = await awaitLine(channel, parseAgentLine, readyMs);
    } catch (e) {
      channel?.end();
      throw this.failed(e instanceof Error ? e.message : String(e), 'channel', e);
    }
    if (!answer?.linked) {
      channel.end();
      const why =
        answer?.why ??
        (channel.isClosed
          ? `the link script ended without a word${channel.stderr().trim() ? `: ${channel.stderr().trim().slice(-300)}` : ''}`
          : `the link script said nothing within ${duration(readyMs)}`);
      throw this.failed(why, answer ? (answer.forwarded ? 'directory' : 'no-agent') : 'channel');
    }
    if (this.closed || this.gone.has(chain)) {
      channel.end();
      return;
    }
    this.current = { chain, channel };
    this.up = true;
    this.lastError = undefined;
    this.changed();
    // An older channel still open ends only now: its script sees the link re-pointed and leaves it.
    if (previous && previous.channel !== channel) previous.channel.end();
    const held = channel;
    void held.closed.then(() => {
      if (this.current?.channel !== held) return;
      this.up = false;
      this.lastError = `the agent channel to ${this.host} closed`;
      this.changed();
    });
  }

  /** The chain is gone: its channel (and sshd's socket) with it; the link dangles until the next chain. */
  detach(chain: RemoteChain): void {
    // An attach still waiting for its ready line on this chain must not count it as up.
    this.gone.add(chain);
    if (this.current?.chain !== chain) return;
    const { channel } = this.current;
    this.current = undefined;
    this.up = false;
    channel.end();
    this.changed();
  }

  /** Ends the channel (its script removes the link if still its own); teardown's unlink does the rest. */
  close(): Promise<void> {
    this.closed = true;
    const channel = this.current?.channel;
    this.current = undefined;
    this.up = false;
    channel?.end();
    this.changed();
    return Promise.resolve();
  }

  status(): AgentStatus {
    return {
      host: this.host,
      socket: this.socket,
      up: this.up,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  private failed(why: string, kind: 'no-agent' | 'directory' | 'channel', cause?: unknown): EnvError {
    // A chain that attached before keeps its link: only this attempt failed.
    if (!this.current) this.up = false;
    this.lastError = why;
    this.changed();
    const hint = {
      'no-agent': `start an ssh-agent here with your keys (ssh-add -l lists them), and allow agent forwarding on ${this.host} (AllowAgentForwarding yes in its sshd_config)`,
      directory: `on ${this.host}, make ~/.moshctl/agent a directory of yours that only you can write to (or remove it)`,
      channel: `check the connection to ${this.host}; the agent is linked again with the next chain`,
    }[kind];
    return new EnvError(
      `agent forwarding to ${this.host}: ${why}`,
      hint,
      { host: this.host, step: 'agent' },
      ...(cause ? [{ cause }] : []),
    );
  }

  private changed(): void {
    this.opts.onChange?.();
  }
}

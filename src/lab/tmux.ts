// Drives an interactive program (mosh-client, a shell) through a real
// terminal: a tmux server on a private socket with a fixed-size pane, so a
// test can type into it and read the screen back. The server is tracked by
// pid in the lab, so a forgotten Tmux still dies with the lab.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childrenOf, mustRun, refOf, run, stopAll, type ProcRef } from './proc.js';
import type { HostName } from './topology.js';

/** The parts of a Lab the driver needs (a structural type avoids an import cycle). */
export interface TmuxLab {
  dir: string;
  host(name: HostName): { ns: string };
  track(pid: number): void;
  asClientUser?(argv: readonly string[], env?: Record<string, string>): string[];
}

export interface TmuxOptions {
  /** The command to run in the pane, as argv (no shell involved). */
  command: readonly string[];
  /** Which lab host's namespace the command runs in; default "client". */
  host?: HostName;
  /** Distinguishes several drivers in one lab; default "main". */
  name?: string;
  width?: number;
  height?: number;
  /** Extra environment for the pane (LANG defaults to C.UTF-8: mosh needs a UTF-8 locale). */
  env?: Record<string, string>;
  /**
   * Run the command as the lab's client user (tmux itself stays root): with
   * that user's clean login environment plus TERM and `env`, not the pane's.
   */
  asClientUser?: boolean;
}

// tmux's own default, set explicitly so a command run with a clean environment can be given the same TERM.
const PANE_TERM = 'screen';

const SESSION = 'main';

export class Tmux {
  private stopped = false;

  private constructor(
    readonly socket: string,
    readonly serverPid: number,
    private readonly statusFile: string,
    /** The server and the pane's program, recorded at start so a reused pid is never signalled. */
    private readonly refs: ProcRef[],
  ) {}

  static async start(lab: TmuxLab, opts: TmuxOptions): Promise<Tmux> {
    const name = opts.name ?? 'main';
    if (!/^[a-z0-9-]{1,20}$/.test(name)) throw new Error(`bad tmux name "${name}"`);
    const socket = join(lab.dir, `tmux-${name}.sock`);
    const conf = join(lab.dir, `tmux-${name}.conf`);
    // No status line, so the pane is the whole requested size; dead panes stay
    // visible so a test can read a program's last words and its exit status.
    writeFileSync(
      conf,
      [
        'set -g status off',
        'set -g remain-on-exit on',
        'set -g history-limit 10000',
        'set -sg escape-time 0',
        `set -g default-terminal ${PANE_TERM}`,
        '',
      ].join('\n'),
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      LANG: process.env.LANG ?? 'C.UTF-8',
      TERM: process.env.TERM ?? 'xterm-256color',
      ...opts.env,
    };
    // tmux 3.3 often leaves a dead pane's process unreaped, so #{pane_dead_status}
    // is unreliable: a small sh wrapper writes the exit status to a file instead.
    // Ctrl-C in the pane reaches the whole process group: the wrapper traps it
    // (its child still gets the default action) so it lives to write the status.
    const statusFile = join(lab.dir, `tmux-${name}.status`);
    const wrapper =
      'trap : INT; f=$0 ns=$1; shift; ip netns exec "$ns" "$@"; s=$?; echo "$s" > "$f"; exit "$s"';
    let command = [...opts.command];
    if (opts.asClientUser) {
      if (!lab.asClientUser) throw new Error('tmux: this lab cannot run commands as the client user');
      command = lab.asClientUser(command, { TERM: PANE_TERM, ...opts.env });
    }
    const argv = ['sh', '-c', wrapper, statusFile, lab.host(opts.host ?? 'client').ns, ...command];
    const w = String(opts.width ?? 120);
    const h = String(opts.height ?? 40);
    await mustRun(
      ['tmux', '-S', socket, '-f', conf, 'new-session', '-d', '-s', SESSION, '-x', w, '-y', h, ...argv],
      { env },
    );
    const info = await mustRun(['tmux', '-S', socket, 'display', '-p', '-t', SESSION, '#{pid} #{pane_pid}']);
    const [server, pane] = info.trim().split(' ').map(Number);
    if (!server || !pane) throw new Error(`tmux: cannot read pids from "${info.trim()}"`);
    lab.track(server);
    lab.track(pane);
    return new Tmux(socket, server, statusFile, [refOf(server), refOf(pane)]);
  }

  private tmux(args: string[]): Promise<string> {
    return mustRun(['tmux', '-S', this.socket, ...args]);
  }

  /** Type text literally (no key names interpreted). */
  async sendKeys(text: string): Promise<void> {
    await this.tmux(['send-keys', '-t', SESSION, '-l', '--', text]);
  }

  async sendEnter(): Promise<void> {
    await this.tmux(['send-keys', '-t', SESSION, 'Enter']);
  }

  /** Send tmux key names, e.g. "C-c", "C-^", "Escape". */
  async sendKey(...keys: string[]): Promise<void> {
    await this.tmux(['send-keys', '-t', SESSION, ...keys]);
  }

  /** The visible screen as text, wrapped lines joined. */
  capture(): Promise<string> {
    return this.tmux(['capture-pane', '-p', '-J', '-t', SESSION]);
  }

  /** Whether the pane shows its alternate screen (a full-screen program's smcup, which mosh --no-init leaves out). */
  async alternateScreen(): Promise<boolean> {
    return (await this.tmux(['display-message', '-p', '-t', SESSION, '#{alternate_on}'])).trim() === '1';
  }

  /** Poll the screen until it matches; throws with the last screen on timeout. */
  async waitFor(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let screen = '';
    for (;;) {
      screen = await this.capture();
      if (typeof pattern === 'string' ? screen.includes(pattern) : pattern.test(screen)) return screen;
      if (Date.now() > deadline) {
        throw new Error(`tmux: ${String(pattern)} did not appear within ${timeoutMs} ms; screen:\n${screen}`);
      }
      await sleep(100);
    }
  }

  /** undefined while the program runs, else its exit status (128+N after signal N). */
  exitStatus(): Promise<number | undefined> {
    try {
      const text = readFileSync(this.statusFile, 'utf8').trim();
      return Promise.resolve(text === '' ? undefined : Number(text));
    } catch {
      return Promise.resolve(undefined);
    }
  }

  /** Stop the server and the pane's program; idempotent. */
  async kill(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // The program itself is a child of the pane's sh wrapper: stop it too.
    const programs = this.refs.flatMap((r) => childrenOf(r.pid)).map(refOf);
    await run(['tmux', '-S', this.socket, 'kill-server']);
    // The hangup starts the program's own teardown (moshctl stops what it started
    // on every host): give it the time a user's terminal would, not a few ms.
    await stopAll([...programs, ...this.refs], 15_000);
  }
}

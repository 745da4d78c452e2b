// One ControlMaster: the user's `ssh -M -N` for one hop, started through a
// small /bin/sh wrapper. Why the wrapper:
// - ssh prompts (passphrases, passwords, codes, "confirm user presence") on
//   /dev/tty itself, so it must stay in moshctl's session and process group,
//   yet a Ctrl-C or a hangup of the terminal must not kill it: moshctl owns
//   those signals and still needs the connections to tear down. The wrapper
//   ignores INT and HUP before starting ssh, and OpenSSH leaves signals that
//   were ignored at its start ignored.
// - A master must never outlive moshctl, even after SIGKILL. The wrapper
//   reads a pipe from moshctl that is never written: when the read returns
//   (moshctl closed it, or died and the kernel closed it) it TERMs ssh.
// - Node cannot wait for a grandchild; the wrapper waits for ssh and prints
//   its exit status, after printing its pid.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { lstatSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { SshHost } from '../config/types.js';

const WRAPPER = [
  "trap '' INT HUP",
  '"$@" </dev/null >/dev/null &',
  'ssh=$!',
  'echo "$ssh"',
  // An asynchronous list's stdin is /dev/null unless redirected, so the pipe goes through fd 3.
  'exec 3<&0',
  '{ read -r _ <&3; kill -TERM "$ssh"; } >/dev/null 2>&1 &',
  'watcher=$!',
  'exec 3<&-',
  'wait "$ssh"',
  'code=$?',
  'kill "$watcher" 2>/dev/null',
  'echo "exit $code"',
].join('\n');

/** How much of a master's stderr is kept: enough for any failure, bounded for a long session. */
const STDERR_KEEP = 16 * 1024;
/** How often the control socket is looked for when fs.watch says nothing (some file systems never do). */
const POLL_MS = 100;
/** After ssh exits, how long its last stderr lines may take to arrive. */
const STDERR_DRAIN_MS = 100;
const WRAPPER_EXIT_MS = 500;
const STOP_GRACE_MS = 2_000;

/** `p`, or nothing after `ms`. */
function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function isSocket(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Why a master is not ready: ssh exited first, with this code. */
export class MasterExited extends Error {
  constructor(readonly code: number | null) {
    super(`ssh exited with ${code ?? 'a signal'} before its control socket appeared`);
  }
}

export class Master {
  /** The wrapper shell's pid; `sshPid` is the ssh process itself. */
  readonly wrapperPid: number | undefined;
  private pid: number | undefined;
  private tail = '';
  private total = 0;
  private code: number | null | undefined;
  private readonly exitListeners = new Set<(code: number | null) => void>();
  /** Resolves with ssh's exit code once it has exited and its stderr is read. */
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;

  constructor(
    readonly host: SshHost,
    readonly controlSocket: string,
    sshPath: string,
    argv: readonly string[],
  ) {
    this.child = spawn('/bin/sh', ['-c', WRAPPER, 'moshctl-ssh', sshPath, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.wrapperPid = this.child.pid;
    const { child } = this;
    child.stdin.on('error', () => undefined);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => this.keep(d));
    const stderrEnded = new Promise<void>((r) => child.stderr.once('close', r));
    const wrapperEnded = new Promise<void>((r) => child.once('exit', () => r()));
    let out = '';
    let markExited!: (code: number | null) => void;
    this.exited = new Promise((r) => (markExited = r));
    const exitedWith = (code: number | null): void => {
      if (this.code !== undefined) return;
      this.code = code;
      // ssh wrote its last words before it exited; give the pipe a moment to deliver them,
      // and the wrapper (which exits right after) a moment to be reaped.
      void Promise.all([within(stderrEnded, STDERR_DRAIN_MS), within(wrapperEnded, WRAPPER_EXIT_MS)]).then(() => {
        markExited(code);
        for (const cb of this.exitListeners) cb(code);
      });
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        const exit = /^exit (\d+)$/.exec(line);
        if (exit) exitedWith(Number(exit[1]));
        else if (/^\d+$/.test(line)) this.pid = Number(line);
      }
    });
    // Output ends when the wrapper exits. Without an exit line it was killed: close the pipe
    // so that its watcher, if alive, TERMs ssh, and count ssh as gone.
    child.stdout.once('close', () => {
      if (this.code !== undefined) return;
      child.stdin.destroy();
      exitedWith(null);
    });
    child.on('error', (err) => {
      this.keep(`${err.message}\n`);
      exitedWith(null);
    });
  }

  get sshPid(): number | undefined {
    return this.pid;
  }

  get running(): boolean {
    return this.code === undefined;
  }

  /** Called once when ssh exits (after its stderr is read). */
  onExit(cb: (code: number | null) => void): void {
    this.exitListeners.add(cb);
  }

  private keep(text: string): void {
    this.total += text.length;
    this.tail = (this.tail + text).slice(-STDERR_KEEP);
  }

  /** The kept tail of ssh's stderr. */
  get stderr(): string {
    return this.tail;
  }

  /** A position in the stderr stream, for logSince. */
  get logPosition(): number {
    return this.total;
  }

  /** What ssh wrote to stderr after `position` (as far as the kept tail reaches). */
  logSince(position: number): string {
    const wanted = this.total - position;
    return wanted <= 0 ? '' : this.tail.slice(-Math.min(wanted, this.tail.length));
  }

  /**
   * Resolves once the control socket exists (OpenSSH creates it only after
   * logging in); rejects with MasterExited if ssh exits first.
   */
  ready(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let watcher: FSWatcher | undefined;
      let done = false;
      const finish = (err?: Error): void => {
        if (done) return;
        done = true;
        watcher?.close();
        clearInterval(timer);
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        if (isSocket(this.controlSocket)) finish();
      };
      void this.exited.then((code) =>
        isSocket(this.controlSocket) ? finish() : finish(new MasterExited(code)),
      );
      try {
        const name = basename(this.controlSocket);
        watcher = watch(dirname(this.controlSocket), (_event, file) => {
          if (file === null || file === name) check();
        });
        watcher.on('error', () => undefined);
      } catch {
        // Polling alone will do.
      }
      const timer = setInterval(check, POLL_MS);
      check();
    });
  }

  /**
   * Ask ssh to exit now (TERM, by closing the wrapper's pipe: the wrapper
   * knows the pid is still its child) without waiting.
   */
  kill(): void {
    this.child.stdin.destroy();
  }

  /** TERM ssh and wait for it to exit; after STOP_GRACE_MS, KILL it and its wrapper. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.kill();
    if (await this.exitedWithin(STOP_GRACE_MS)) return;
    for (const pid of [this.pid, this.wrapperPid]) {
      try {
        if (pid !== undefined && this.running) process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    await this.exitedWithin(STOP_GRACE_MS);
  }

  /** Whether ssh has exited, waiting up to `ms` for it. */
  async exitedWithin(ms: number): Promise<boolean> {
    if (!this.running) return true;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    const exited = await Promise.race([this.exited.then(() => true as const), late]);
    clearTimeout(timer);
    return exited;
  }
}

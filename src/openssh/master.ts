// One ControlMaster: the user's `ssh -M -N` for one hop, started through a
// small /bin/sh wrapper. Why the wrapper:
// - ssh prompts (passphrases, passwords, codes) on /dev/tty itself, so it
//   must stay in moshctl's session and process group, yet a Ctrl-C or a
//   hangup of the terminal must not kill it: moshctl owns those signals and
//   still needs the connections to tear down. The wrapper ignores INT and HUP
//   before starting ssh, and OpenSSH leaves signals that were ignored at its
//   start ignored.
// - A master must never outlive moshctl, even after SIGKILL. The wrapper
//   reads a pipe from moshctl that is never written: when the read returns
//   (moshctl closed it, or died and the kernel closed it) it TERMs ssh.
// - Node cannot wait for a grandchild; the wrapper waits for ssh and prints
//   its exit status, after printing its pid.
// What ssh logs goes to a file beside the control socket (`ssh -E`). Its
// stderr then carries only what it writes there directly (a server's banner,
// a ProxyCommand's own output, "Connection to X closed"): passed on while the
// hop connects, kept quiet afterwards, since by then mosh-client owns the
// terminal.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { closeSync, fstatSync, lstatSync, openSync, readSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { SshHost } from '../config/types.js';

const WRAPPER = [
  "trap '' INT HUP",
  '"$@" </dev/null >/dev/null &',
  'ssh=$!',
  // ssh has the terminal's stderr; the shell's own notes ("Terminated") must not land there.
  'exec 2>/dev/null',
  'echo "$ssh"',
  // An asynchronous list's stdin is /dev/null unless redirected, so the pipe goes through fd 3.
  'exec 3<&0',
  '{ read -r _ <&3; kill -TERM "$ssh"; } >/dev/null &',
  'watcher=$!',
  'exec 3<&-',
  'wait "$ssh"',
  'code=$?',
  'kill "$watcher"',
  'echo "exit $code"',
].join('\n');

/** How much of a master's log is read, and of its stderr kept: enough for any failure, bounded for a long session. */
const LOG_READ_MAX = 16 * 1024;
/** After ssh exits, how long its last stderr lines may take to arrive. */
const STDERR_DRAIN_MS = 100;
/** How often the control socket is looked for when fs.watch says nothing (some file systems never do). */
const POLL_MS = 100;
const WRAPPER_EXIT_MS = 500;
const STOP_GRACE_MS = 2_000;

/** `p`, or nothing after `ms`. */
function within(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((r) => (timer = setTimeout(r, ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * Up to LOG_READ_MAX bytes of `file` from `from` on (its end when there is
 * more), and where they start; '' when it does not exist.
 */
function readLog(file: string, from: number): { start: number; text: string } {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - LOG_READ_MAX, 0);
    const buf = Buffer.alloc(Math.max(size - start, 0));
    const n = readSync(fd, buf, 0, buf.length, start);
    return { start, text: buf.subarray(0, n).toString('utf8') };
  } catch {
    return { start: from, text: '' };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function logSize(file: string): number {
  try {
    return lstatSync(file).size;
  } catch {
    return 0;
  }
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
  private code: number | null | undefined;
  /** Whether exit listeners have been called (a later one is called at once). */
  private notified = false;
  private readonly exitListeners = new Set<(code: number | null) => void>();
  /** Resolves with ssh's exit code once it has exited (and its wrapper with it). */
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private stderrTail = '';
  private partialLine = '';
  private echo: ((line: string) => void) | undefined;

  constructor(
    readonly host: SshHost,
    readonly controlSocket: string,
    /** Where ssh logs (`ssh -E`), given in `argv`. */
    readonly logFile: string,
    sshPath: string,
    argv: readonly string[],
    /** Where stderr lines go until quiet() (a banner, a ProxyCommand's login URL). */
    echo?: (line: string) => void,
  ) {
    this.echo = echo;
    this.child = spawn('/bin/sh', ['-c', WRAPPER, 'moshctl-ssh', sshPath, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.wrapperPid = this.child.pid;
    const { child } = this;
    child.stdin.on('error', () => undefined);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => this.onStderr(d));
    const stderrEnded = new Promise<void>((r) => child.stderr.once('close', r));
    const wrapperEnded = new Promise<void>((r) => child.once('exit', () => r()));
    let out = '';
    let markExited!: (code: number | null) => void;
    this.exited = new Promise((r) => (markExited = r));
    const exitedWith = (code: number | null): void => {
      if (this.code !== undefined) return;
      this.code = code;
      // ssh wrote its last words before it exited: give the pipe a moment to deliver
      // them, and the wrapper (which exits right after) a moment to be reaped.
      void Promise.all([within(stderrEnded, STDERR_DRAIN_MS), within(wrapperEnded, WRAPPER_EXIT_MS)]).then(
        () => {
          this.quiet();
          // A process ssh started may still hold the pipe (a ProxyCommand that ignored
          // ssh's SIGHUP): it must not keep moshctl from exiting.
          child.stderr.destroy();
          this.notified = true;
          markExited(code);
          for (const cb of this.exitListeners) cb(code);
        },
      );
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
    child.on('error', () => exitedWith(null));
  }

  get sshPid(): number | undefined {
    return this.pid;
  }

  get running(): boolean {
    return this.code === undefined;
  }

  /** Called once when ssh exits, or soon when it already has. */
  onExit(cb: (code: number | null) => void): void {
    if (this.notified) queueMicrotask(() => cb(this.code ?? null));
    else this.exitListeners.add(cb);
  }

  private onStderr(text: string): void {
    this.stderrTail = (this.stderrTail + text).slice(-LOG_READ_MAX);
    if (!this.echo) return;
    const lines = (this.partialLine + text).split(/\r?\n/);
    this.partialLine = lines.pop() ?? '';
    for (const line of lines) this.echo(line);
  }

  /** Stop passing stderr on (what is kept stays readable as `stderr`). */
  quiet(): void {
    if (this.partialLine) this.echo?.(this.partialLine);
    this.partialLine = '';
    this.echo = undefined;
  }

  /** The end of what ssh (or its ProxyCommand) wrote to stderr. */
  get stderr(): string {
    return this.stderrTail;
  }

  /** The end of what ssh logged. */
  get log(): string {
    return readLog(this.logFile, 0).text;
  }

  /** A position in the log, for logSince. */
  get logPosition(): number {
    return logSize(this.logFile);
  }

  /** What ssh logged after `position` (its last LOG_READ_MAX bytes at most). */
  logSince(position: number): string {
    return readLog(this.logFile, position).text;
  }

  /** logSince, with the position its text starts at (later than `position` when there was more to read). */
  logFrom(position: number): { start: number; text: string } {
    return readLog(this.logFile, position);
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

// The private directory that holds one control socket (and ssh's log) per
// hop. Unix socket paths are limited to 104 bytes on macOS and the BSDs (108
// on Linux), and OpenSSH first binds `<path>.<up to 16 hex digits>` before
// renaming it into place, so the directory must be short: $XDG_RUNTIME_DIR
// when it is usable (per-user, mode 0700, cleared at logout), else the
// temporary directory.
//
// The masters never outlive moshctl (see master.ts), but a directory could:
// it is removed when the process exits however it exits short of SIGKILL, and
// directories whose owner was SIGKILLed are swept when the next one is made.

import {
  accessSync,
  chmodSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { EnvError } from '../errors.js';
import { controlPath, isShellSafe } from './argv.js';

/** sun_path on macOS and the BSDs, less the terminating NUL. */
const MAX_SOCKET_PATH = 103;
/** What OpenSSH appends to a control path while it binds the socket: `.` and 16 hex digits. */
const OPENSSH_TEMP_SUFFIX = 17;
const PREFIX = 'moshctl-cm-';
const OURS = /^moshctl-cm-[A-Za-z0-9]{6}$/;
/** Holds the owner's pid, so a later moshctl can tell an abandoned directory. */
const OWNER_FILE = 'owner';
/** A directory without an owner file may be one being made right now; older than this it is abandoned. */
const UNOWNED_GRACE_MS = 60_000;

/** Whether control sockets for `hops` hops fit under `dir` (with mkdtemp's six characters). */
export function socketPathFits(base: string, hops: number): boolean {
  const longest = controlPath(join(base, `${PREFIX}XXXXXX`), Math.max(hops - 1, 0));
  return Buffer.byteLength(longest) + OPENSSH_TEMP_SUFFIX <= MAX_SOCKET_PATH;
}

function usable(base: string): boolean {
  try {
    if (!statSync(base).isDirectory()) return false;
    accessSync(base, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as someone else's process.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes this user's control directories under `base` whose owner process is gone. */
export function sweepAbandoned(base: string, now = Date.now()): string[] {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(base).filter((e) => OURS.test(e));
  } catch {
    return removed;
  }
  for (const entry of entries) {
    const dir = join(base, entry);
    try {
      const st = statSync(dir);
      if (!st.isDirectory() || st.uid !== process.getuid?.()) continue;
      let owner: number | undefined;
      try {
        owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
      } catch {
        owner = undefined;
      }
      const abandoned =
        owner === undefined || !Number.isInteger(owner) || owner <= 0
          ? now - st.mtimeMs > UNOWNED_GRACE_MS
          : !alive(owner);
      if (abandoned) {
        rmSync(dir, { recursive: true, force: true });
        removed.push(dir);
      }
    } catch {
      // Gone meanwhile, or not ours to judge.
    }
  }
  return removed;
}

/** Directories of chains still open in this process, removed at exit. */
const live = new Set<string>();
let exitHookInstalled = false;

function removeLiveAtExit(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
}

/** Creates the directory (mode 0700) and returns its path. */
export function makeControlDir(hops: number, env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  const bases = [...new Set([...(xdg && isAbsolute(xdg) ? [xdg] : []), tmpdir(), '/tmp'])];
  const refused: string[] = [];
  for (const base of bases) {
    if (!usable(base)) continue;
    // Paths in a ProxyCommand go through the shell: only plain characters.
    if (!isShellSafe(base)) refused.push(`${base} (has characters a shell would interpret)`);
    else if (!socketPathFits(base, hops)) refused.push(`${base} (too long for a Unix socket path)`);
    else {
      sweepAbandoned(base);
      const dir = mkdtempSync(join(base, PREFIX));
      chmodSync(dir, 0o700);
      writeFileSync(join(dir, OWNER_FILE), String(process.pid));
      live.add(dir);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.on('exit', removeLiveAtExit);
      }
      return dir;
    }
  }
  throw new EnvError(
    `no directory for ssh's control sockets: ${refused.length ? refused.join(', ') : `none of ${bases.join(', ')} is writable`}`,
    `set TMPDIR (or XDG_RUNTIME_DIR) to a short writable directory whose path has only letters, digits and / . _ - (a Unix socket path must stay under ${MAX_SOCKET_PATH + 1} bytes)`,
    { step: 'connect' },
  );
}

export function removeControlDir(dir: string): void {
  live.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

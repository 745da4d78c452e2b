// The private directory that holds one control socket per hop. Unix socket
// paths are limited to 104 bytes on macOS and the BSDs (108 on Linux), and
// OpenSSH first binds `<path>.<up to 16 hex digits>` before renaming it into
// place, so the directory must be short: $XDG_RUNTIME_DIR when it is usable
// (per-user, mode 0700, cleared at logout), else the temporary directory.

import { accessSync, chmodSync, constants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { EnvError } from '../errors.js';
import { controlPath, isShellSafe } from './argv.js';

/** sun_path on macOS and the BSDs, less the terminating NUL. */
const MAX_SOCKET_PATH = 103;
/** What OpenSSH appends to a control path while it binds the socket: `.` and 16 hex digits. */
const OPENSSH_TEMP_SUFFIX = 17;
const PREFIX = 'moshctl-';

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
      const dir = mkdtempSync(join(base, PREFIX));
      chmodSync(dir, 0o700);
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
  rmSync(dir, { recursive: true, force: true });
}

// Host names from ssh_config's `Host` lines, for completion only. Resolving a
// host goes through `ssh -G` (src/config/ssh-g.ts), but `ssh -G` answers for
// one given name and cannot list names, and running ssh on every TAB would be
// slow: so this reads the files themselves, following Include as ssh does.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';

/** ssh's own limit on nested Include. */
const MAX_DEPTH = 16;
/** A user's ssh_config is a few KiB; anything this large is not one, and TAB must stay fast. */
const MAX_BYTES = 1024 * 1024;

/**
 * Names in `Host` lines that name one host: no patterns (`*`, `?`), no
 * negations (`!`). `config` is the file ssh reads first (`~/.ssh/config`, or
 * MOSHCTL_SSH_CONFIG as `ssh -F`); `home` is where `~` and relative Include paths point.
 */
export function sshConfigHosts(config: string, home: string): string[] {
  const names: string[] = [];
  const seen = new Set<string>();
  const read = (file: string, depth: number): void => {
    if (depth > MAX_DEPTH || seen.has(file)) return;
    seen.add(file);
    let text: string;
    try {
      if (statSync(file).size > MAX_BYTES) return;
      text = readFileSync(file, 'utf8');
    } catch {
      return; // missing or unreadable: ssh skips it as well
    }
    for (const line of text.split('\n')) {
      const m = /^\s*(host|include)(?:\s*=\s*|\s+)(.*)$/i.exec(line);
      if (!m) continue;
      const words = splitWords(m[2] ?? '');
      if (m[1]?.toLowerCase() === 'host') names.push(...words.filter((w) => !/[*?!]/.test(w)));
      else for (const w of words) for (const f of expandInclude(w, home)) read(f, depth + 1);
    }
  };
  read(config, 0);
  return names;
}

/** ssh_config words: whitespace separated, `"…"` quoted, and a `#` word starts a comment. */
function splitWords(text: string): string[] {
  const words: string[] = [];
  for (const m of text.matchAll(/"([^"]*)"|(\S+)/g)) {
    if (m[2]?.startsWith('#')) break;
    words.push(m[1] ?? m[2] ?? '');
  }
  return words.filter(Boolean);
}

/**
 * An Include path: `~` is home, a relative path is under ~/.ssh (for the
 * user's files, as ssh_config(5) says), and the file name may be a glob
 * of `*` and `?` (`config.d/*`), matched in sorted order as glob(3) returns them.
 */
function expandInclude(word: string, home: string): string[] {
  const path = word.startsWith('~/') ? join(home, word.slice(2)) : word;
  const full = isAbsolute(path) ? path : join(home, '.ssh', path);
  const base = basename(full);
  if (!/[*?]/.test(base)) return [full];
  const pattern = globToRegExp(base);
  try {
    return readdirSync(dirname(full))
      .filter((f) => pattern.test(f) && !f.startsWith('.'))
      .sort()
      .map((f) => join(dirname(full), f));
  } catch {
    return [];
  }
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

// Quoting for command lines that run on a remote host through ssh. ssh hands the
// whole line to the user's login shell, so every interpolated value is quoted
// for POSIX sh, and anything with real logic runs under an explicit `sh -c`.

/**
 * Single-quote `value` for a POSIX shell: the result is always one word whose
 * value is exactly `value`. A single quote inside is written as '\'' (close the
 * quote, an escaped quote, reopen). NUL cannot travel in an argument and is refused.
 */
export function shellQuote(value: string): string {
  if (value.includes('\0')) throw new RangeError('a shell argument cannot contain a NUL byte');
  // Words made only of these characters mean the same in sh, bash, zsh and fish, so they
  // stay bare for readability (no `=`: zsh expands a leading `=cmd`; no `~`, globs or `{}`).
  if (/^[A-Za-z0-9_./:,+-]+$/.test(value)) return value;
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Quote each argument and join them with spaces. */
export function shellJoin(args: readonly (string | number)[]): string {
  return args.map((a) => shellQuote(String(a))).join(' ');
}

/**
 * The shell every remote script runs under, by path: a login may narrow PATH,
 * and the login shell itself may not be sh-like (fish, csh).
 */
export const SH = '/bin/sh';

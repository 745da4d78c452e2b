// mosh.server, mosh.client and mosh.predict, and the `up` options that
// override them: the same checks for the file and the command line. The
// server's path reaches a remote shell (quoted, but checked first); the
// client's runs here without a shell.
import type { PredictMode } from './types.js';

export type Checked<T> = { ok: true; value: T } | { ok: false; message: string; hint: string };

export const SERVER_HINT =
  'name mosh-server by its path on the target, e.g. /opt/homebrew/bin/mosh-server or ~/.local/bin/mosh-server (letters, digits, spaces and / . _ - + , : @ %; ~/ only at the start)';

/**
 * A path (or a name looked up on PATH) of mosh-server on the target: one
 * word, quoted there, `~/` at the start meaning the remote user's home. No
 * shell syntax, no `=` (env would take the word for a variable), no leading
 * `-`; it must name a mosh-server, since teardown recognizes the server it
 * stops by pid by that word in its command line.
 */
export function parseServerProgram(value: unknown): Checked<string> {
  if (typeof value !== 'string' || value === '')
    return { ok: false, message: 'mosh-server path is empty', hint: SERVER_HINT };
  const rest = value.startsWith('~/') ? value.slice(2) : value;
  if (value.length > 255 || value.startsWith('-') || !/^[A-Za-z0-9 /._+,:@%-]+$/.test(rest))
    return {
      ok: false,
      message: `${JSON.stringify(value)} is not a path moshctl can pass to a shell`,
      hint: SERVER_HINT,
    };
  if (!rest.includes('mosh-server'))
    return {
      ok: false,
      message: `${JSON.stringify(value)} does not name a mosh-server`,
      hint: 'the path must contain "mosh-server": moshctl recognizes the server it started by that word when it stops it by pid (a wrapper script can be called mosh-server)',
    };
  return { ok: true, value };
}

export const CLIENT_HINT =
  'name mosh-client by a path on this machine (absolute, ~/..., or relative), or by a name found on PATH';

/** mosh-client on this machine: run without a shell, so only what cannot be a file name is refused. */
export function parseClientProgram(value: unknown): Checked<string> {
  if (typeof value !== 'string' || value === '' || value.length > 4096 || /[\0\r\n]/.test(value))
    return { ok: false, message: `${JSON.stringify(value)} is not a program path`, hint: CLIENT_HINT };
  if (value.startsWith('-'))
    return { ok: false, message: `${JSON.stringify(value)} starts with "-"`, hint: CLIENT_HINT };
  return { ok: true, value };
}

export const predictModes = ['adaptive', 'always', 'never', 'experimental'] as const;

export function parsePredict(value: unknown): Checked<PredictMode> {
  if (typeof value === 'string' && (predictModes as readonly string[]).includes(value))
    return { ok: true, value: value as PredictMode };
  return {
    ok: false,
    message: `${JSON.stringify(value)} is not a prediction mode`,
    hint: `use one of: ${predictModes.join(', ')} (as mosh --predict)`,
  };
}

// Reads relay.py from beside this module: src/relay in development, dist/relay
// after `npm run build` (scripts/copy-assets.mjs copies it there).
import { readFile } from 'node:fs/promises';

export function readRelayScript(): Promise<string> {
  return readFile(new URL('./relay.py', import.meta.url), 'utf8');
}

// Reads the relay programs from beside this module: src/relay/runtime in
// development, dist/relay/runtime after `npm run build` (scripts/copy-assets.mjs
// copies them there). They travel to a hop on stdin; nothing is written there.
// The tcp forwarder's programs are read the same way (src/tcp/script.ts).
import { readFile } from 'node:fs/promises';
import type { TwoPrograms } from './two-runtimes.js';

/** Reads both programs once, on first use; later calls share that read. */
export function programsReader(python3: URL, perl: URL): () => Promise<TwoPrograms> {
  let programs: Promise<TwoPrograms> | undefined;
  return () =>
    (programs ??= Promise.all([readFile(python3, 'utf8'), readFile(perl, 'utf8')]).then(([py, pl]) => ({
      python3: py,
      perl: pl,
    })));
}

export const readRelayPrograms = programsReader(
  new URL('./runtime/relay.py', import.meta.url),
  new URL('./runtime/relay.pl', import.meta.url),
);

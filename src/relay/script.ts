// Reads the relay programs from beside this module: src/relay/runtime in
// development, dist/relay/runtime after `npm run build` (scripts/copy-assets.mjs
// copies them there). They travel to a hop on stdin; nothing is written there.
import { readFile } from 'node:fs/promises';
import type { RelayPrograms } from './launch.js';

let programs: Promise<RelayPrograms> | undefined;

export function readRelayPrograms(): Promise<RelayPrograms> {
  programs ??= Promise.all([
    readFile(new URL('./runtime/relay.py', import.meta.url), 'utf8'),
    readFile(new URL('./runtime/relay.pl', import.meta.url), 'utf8'),
  ]).then(([python3, perl]) => ({ python3, perl }));
  return programs;
}

// Reads the forwarder programs from beside this module: src/tcp/runtime in
// development, dist/tcp/runtime after `npm run build` (scripts/copy-assets.mjs
// copies them there). They travel to the target on stdin; nothing is written there.
import { readFile } from 'node:fs/promises';
import type { ForwarderPrograms } from './launch.js';

let programs: Promise<ForwarderPrograms> | undefined;

export function readForwarderPrograms(): Promise<ForwarderPrograms> {
  programs ??= Promise.all([
    readFile(new URL('./runtime/forwarder.py', import.meta.url), 'utf8'),
    readFile(new URL('./runtime/forwarder.pl', import.meta.url), 'utf8'),
  ]).then(([python3, perl]) => ({ python3, perl }));
  return programs;
}

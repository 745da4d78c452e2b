// Reads the forwarder programs from beside this module: src/tcp/runtime in
// development, dist/tcp/runtime after `npm run build` (scripts/copy-assets.mjs
// copies them there). They travel to the target on stdin; nothing is written there.
import { programsReader } from '../relay/script.js';

export const readForwarderPrograms = programsReader(
  new URL('./runtime/forwarder.py', import.meta.url),
  new URL('./runtime/forwarder.pl', import.meta.url),
);

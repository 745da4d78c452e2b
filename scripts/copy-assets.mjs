// tsc copies no non-TypeScript files: the relay script travels next to the code that uploads it.
import { cpSync, existsSync } from 'node:fs';

for (const [from, to] of [
  // relay v2: both runtimes, read by whoever builds the launch command (src/relay/launch.ts)
  ['src/relay/runtime/relay.py', 'dist/relay/runtime/relay.py'],
  ['src/relay/runtime/relay.pl', 'dist/relay/runtime/relay.pl'],
  // tcp transport: the forwarder on the target, both runtimes (src/tcp/launch.ts)
  ['src/tcp/runtime/forwarder.py', 'dist/tcp/runtime/forwarder.py'],
  ['src/tcp/runtime/forwarder.pl', 'dist/tcp/runtime/forwarder.pl'],
]) {
  if (existsSync(from)) cpSync(from, to);
}

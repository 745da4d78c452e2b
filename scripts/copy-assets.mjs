// tsc copies no non-TypeScript files: the relay script travels next to the code that uploads it.
import { cpSync, existsSync } from 'node:fs';

for (const [from, to] of [['src/relay/relay.py', 'dist/relay/relay.py']]) {
  if (existsSync(from)) cpSync(from, to);
}

// up, down and status share their module loading cost (ssh2 and listr2 load
// on demand inside them); main.ts imports this file only for those commands.
export { up } from './up.js';
export { down } from './down.js';
export { status } from './status.js';

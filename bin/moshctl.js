#!/usr/bin/env node
// Launcher for the CLI bundled into dist/bundle/ (npm run build; scripts/build-cli.mjs).
// CommonJS (bin/package.json): Node's ES module loader would add ~8 % to every start.
'use strict';
const { join } = require('node:path');

const argv = process.argv.slice(2);
const end = argv.indexOf('--');
const debug =
  (end < 0 ? argv : argv.slice(0, end)).includes('--debug') ||
  !['', '0', undefined].includes(process.env.MOSHCTL_DEBUG);
const bundle = join(__dirname, '..', 'dist', 'bundle');
let load;
if (debug) {
  // Stack traces that name src/: Node maps them for files its own require loads. Reading
  // the maps costs time, so only with --debug, which also goes without the code cache.
  process.setSourceMapsEnabled(true);
  load = require;
} else {
  load = require('./code-cache.js').bundleLoader(bundle);
}
load(join(bundle, 'moshctl.cjs'))
  .main(argv)
  .then((code) => {
    process.exitCode = code;
  });

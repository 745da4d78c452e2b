#!/usr/bin/env node
// Thin launcher for the CLI bundled into dist/bundle/ (npm run build; scripts/build-cli.mjs).
// CommonJS (bin/package.json says so): Node's ES module loader would add ~8 % to every start.
'use strict';
const argv = process.argv.slice(2);
const end = argv.indexOf('--');
// Stack traces name src/ only with --debug: reading source maps costs time at every start.
if ((end < 0 ? argv : argv.slice(0, end)).includes('--debug') || process.env.MOSHCTL_DEBUG)
  process.setSourceMapsEnabled(true);
require('../dist/bundle/moshctl.cjs')
  .main(argv)
  .then((code) => {
    process.exitCode = code;
  });

#!/usr/bin/env node
'use strict';
// The batchkeeper CLI: runs the TypeScript sources through tsx's CommonJS loader (no build step).
require('tsx/cjs/api').register();
const { runCli } = require('../cli/main.ts');

runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Everything is closed by now; should a stray handle keep the loop alive, do not hang the shell.
  setTimeout(() => process.exit(code), 2000).unref();
});

#!/usr/bin/env node
/** The `batchkeeper` command (package.json `bin`, built to dist/bin/batchkeeper.js). */
import { runCli } from '../cli/main';

runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // Everything is closed by now; should a stray handle keep the loop alive, do not hang the shell.
  setTimeout(() => process.exit(code), 2000).unref();
});

#!/usr/bin/env node
'use strict';
/**
 * The README's two commands on a fresh clone: `npm start` and `npm test` bring what they need before they run, so a
 * new machine needs nothing installed by hand but Node (and Go, which builds the Temporal dev server once):
 *   - the npm packages of package-lock.json (`npm ci`) when node_modules is missing or differs from the lockfile;
 *   - for `test`, Debian's Chromium (the Temporal Web test drives it) and Prometheus (the cluster suite scrapes the
 *     workers with it), installed with apt-get when this runs as root (or with sudo); otherwise it says at once,
 *     before any test runs, what is missing and how to get it.
 * Then it runs tools/scripts/start.ts or tools/scripts/run-tests.ts with tsx, passing the remaining arguments.
 * Plain CommonJS on purpose: it runs before any package is installed.
 */
const { spawnSync } = require('node:child_process');
const { existsSync, readFileSync } = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const say = (message) => console.log(`[setup] ${message}`);

/** Packages the lockfile requires that node_modules lacks or has at another version (optional ones may be absent). */
function outOfDatePackages() {
  const installedFile = path.join(ROOT, 'node_modules', '.package-lock.json');
  if (!existsSync(installedFile)) return ['(node_modules is not installed)'];
  const wanted = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')).packages ?? {};
  const installed = JSON.parse(readFileSync(installedFile, 'utf8')).packages ?? {};
  return Object.entries(wanted)
    .filter(([location, entry]) => location !== '' && !entry.optional && installed[location]?.version !== entry.version)
    .map(([location]) => location.replace(/^node_modules\//, ''));
}

function ensurePackages() {
  const missing = outOfDatePackages();
  if (missing.length === 0) return;
  say(`npm packages to install: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''}; running npm ci`);
  const result = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error('[setup] npm ci failed: the registry must be reachable (or the packages in npm\'s cache)');
    process.exit(result.status ?? 1);
  }
}

/** Programs the test suite drives for real, from Debian: where each is looked for, and what needs it. */
const TEST_PROGRAMS = [
  { package: 'chromium', variable: 'BATCHKEEPER_CHROMIUM_PATH', binary: '/usr/bin/chromium', purpose: 'the Temporal Web test' },
  { package: 'prometheus', variable: 'BATCHKEEPER_PROMETHEUS_PATH', binary: '/usr/bin/prometheus', purpose: 'the cluster suite\'s metrics scrape' },
];

function ensureTestPrograms() {
  const script = path.join(ROOT, 'tools', 'scripts', 'install-debian-package.sh');
  for (const program of TEST_PROGRAMS) {
    const binary = process.env[program.variable] || program.binary;
    if (existsSync(binary)) continue;
    say(`${program.package} (for ${program.purpose}) is missing at ${binary}: installing Debian's package`);
    const result = spawnSync('bash', [script, program.package, binary], { cwd: ROOT, stdio: 'inherit' });
    if (result.status !== 0 || !existsSync(binary)) {
      console.error(
        `[setup] no ${program.package} at ${binary}, so ${program.purpose} cannot run. Install it (apt-get install ${program.package}, as root) ` +
          `or point ${program.variable} at the binary, then run npm test again.`,
      );
      process.exit(1);
    }
  }
}

const [command, ...args] = process.argv.slice(2);
const entries = { start: 'start.ts', test: 'run-tests.ts' };
if (!entries[command]) {
  console.error(`usage: two-commands.js <${Object.keys(entries).join('|')}> [arguments]`);
  process.exit(2);
}
ensurePackages();
if (command === 'test') ensureTestPrograms();
const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, entries[command]), ...args], { cwd: ROOT, stdio: 'inherit' });
process.exit(run.status ?? 1);

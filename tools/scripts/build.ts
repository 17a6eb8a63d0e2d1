/**
 * `npm run build` (also run by `npm pack`): compiles the product folders to dist/ (JS, .d.ts, source maps with their
 * sources inlined) and bundles the workflow code ahead of time, once per failure converter, so an installed package
 * starts workers without webpack (worker/create-worker.ts PREBUILT_BUNDLES).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

const DIST = path.join(PROJECT_ROOT, 'dist');
const log = (message: string) => console.log(`[build] ${message}`);

async function main(): Promise<void> {
  const started = Date.now();
  rmSync(DIST, { recursive: true, force: true });
  log('tsc -p tsconfig.build.json');
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(PROJECT_ROOT, 'tsconfig.build.json')], { stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error(`tsc failed (exit ${tsc.status})`);
  chmodSync(path.join(DIST, 'bin', 'batchkeeper.js'), 0o755);

  const workflowsPath = path.join(DIST, 'workflows', 'index.js');
  const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error };
  const bundles = [
    { file: 'workflow-bundle.js', failureConverterPath: undefined },
    { file: 'workflow-bundle-encoded-failures.js', failureConverterPath: path.join(DIST, 'codec', 'failure-converter.js') },
  ];
  for (const { file, failureConverterPath } of bundles) {
    const { code } = await bundleWorkflowCode({ workflowsPath, failureConverterPath, logger: quiet });
    writeFileSync(path.join(DIST, file), code);
    log(`dist/${file}: ${(Buffer.byteLength(code) / 1024 / 1024).toFixed(1)} MB`);
  }
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

/**
 * The workflow bundle of a source checkout, built once per state of the sources. The package ships prebuilt bundles;
 * a checkout has none, so every worker process started from source bundled the workflows at start: 5-8 s of CPU on
 * a 2-core machine for every test file, every bench and chaos worker, and every restart after a kill (where it also
 * stretched the time a killed worker stayed away). The bundle is kept in <project>/.cache/workflow-bundles/ under a
 * hash of every source file it could include and of the lockfile, and written to a temporary name then renamed, so
 * processes starting together never read half a file. Bundles of older sources go after a day.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WorkflowBundle } from '@temporalio/worker';

const PROJECT_ROOT = path.resolve(__dirname, '..');
/** Folders with no code a workflow bundle can import (tests, tools, output, caches). */
const NOT_BUNDLED = new Set(['node_modules', 'test', 'tools', 'dist', 'lib', 'examples', 'deploy', 'migrations']);
const KEEP_OLD_BUNDLES_MS = 24 * 3_600_000;

/** True when this module runs from its TypeScript source (a checkout), not from the built package. */
export const RUNNING_FROM_SOURCE = __filename.endsWith('.ts');

function sourceFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || NOT_BUNDLED.has(entry.name)) continue;
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(full));
    else if (/\.(ts|js|json)$/.test(entry.name)) files.push(full);
  }
  return files;
}

/** Hash of the sources, the lockfile (the SDK's version) and the failure converter compiled in. */
export function checkoutBundleKey(failureConverterPath: string | undefined): string {
  const hash = createHash('sha256').update(`failure-converter:${failureConverterPath ?? 'default'}\n`);
  for (const file of sourceFiles(PROJECT_ROOT).sort()) {
    hash.update(`${path.relative(PROJECT_ROOT, file)}\n`).update(readFileSync(file));
  }
  return hash.digest('hex').slice(0, 24);
}

export async function checkoutBundle(failureConverterPath: string | undefined, build: () => Promise<WorkflowBundle>): Promise<WorkflowBundle> {
  const directory = path.join(PROJECT_ROOT, '.cache', 'workflow-bundles');
  const file = path.join(directory, `${checkoutBundleKey(failureConverterPath)}.js`);
  const cached = await readFile(file, 'utf8').catch(() => undefined);
  if (cached !== undefined) return { code: cached };
  const bundle = await build();
  await mkdir(directory, { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, bundle.code);
  await rename(temporary, file);
  await removeOldBundles(directory);
  return bundle;
}

async function removeOldBundles(directory: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(directory).catch(() => [] as string[])) {
    const file = path.join(directory, name);
    const info = await stat(file).catch(() => undefined);
    if (info && now - info.mtimeMs > KEEP_OLD_BUNDLES_MS) await rm(file, { force: true });
  }
}

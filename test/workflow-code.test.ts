/**
 * Workflow code must stay deterministic: it bundles without Node built-ins, and nothing it imports at runtime
 * reaches outside workflows/, domain/ and the workflow-safe Temporal packages.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { bundleWorkflowCode } from '@temporalio/worker';
import { nextWakeMs, pollDelayMs } from '../domain/poll-schedule';
import { WORKFLOWS_PATH } from '../worker/create-worker';

const ROOT = path.resolve(__dirname, '..');
const ALLOWED_PACKAGES = ['@temporalio/workflow', '@temporalio/common'];

/** Runtime (non-type) imports of a TypeScript file. */
function runtimeImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  for (const match of source.matchAll(/^\s*import\s+(type\s+)?[^'";]*?from\s+['"]([^'"]+)['"]/gm)) {
    if (!match[1]) specifiers.push(match[2]);
  }
  for (const match of source.matchAll(/^\s*export\s+[^'";]*?from\s+['"]([^'"]+)['"]/gm)) specifiers.push(match[1]);
  for (const match of source.matchAll(/\brequire\(\s*['"]([^'"]+)['"]\s*\)|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    specifiers.push(match[1] ?? match[2]);
  }
  return specifiers;
}

function resolveLocal(from: string, specifier: string): string {
  const base = path.resolve(path.dirname(from), specifier);
  for (const candidate of [`${base}.ts`, path.join(base, 'index.ts')]) {
    try {
      readFileSync(candidate);
      return candidate;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`cannot resolve ${specifier} from ${from}`);
}

test('workflow code imports only workflow-safe modules at runtime', () => {
  const seen = new Set<string>();
  const offending: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const relative = path.relative(ROOT, file);
    if (!relative.startsWith('workflows') && !relative.startsWith('domain')) offending.push(`${relative} (outside workflows/ and domain/)`);
    for (const specifier of runtimeImports(file)) {
      if (specifier.startsWith('.')) visit(resolveLocal(file, specifier));
      else if (!ALLOWED_PACKAGES.includes(specifier)) offending.push(`${relative} imports ${specifier}`);
    }
  };
  visit(path.join(ROOT, 'workflows', 'index.ts'));
  assert.ok(seen.size >= 5, `expected to walk the workflow modules, saw ${seen.size}`);
  assert.deepEqual(offending, []);
});

test('the workflow bundle builds without ignoring any module', async () => {
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: { log() {}, info() {}, warn() {}, error() {}, debug() {}, trace() {} } });
  assert.ok(code.includes('batchWorkflow') && code.includes('jobWorkflow'));
  assert.doesNotMatch(code, /require\(["']node:/);
});

test('poll schedule uses each entry once and repeats the last one', () => {
  const schedule = [60_000, 120_000, 300_000];
  assert.deepEqual([0, 1, 2, 3, 4].map((index) => pollDelayMs(schedule, index)), [60_000, 120_000, 300_000, 300_000, 300_000]);
  assert.equal(nextWakeMs(1_000, 60_000, 30_000), 30_000, 'the deadline wins when it comes first');
  assert.equal(nextWakeMs(1_000, 60_000, 100_000), 61_000);
});

/**
 * The chaos soak's quick preset (`npm run chaos -- --quick`) as a subprocess, on a stack of its own under
 * .data/chaos-test/ (it restarts Temporal and PostgreSQL, so it must not touch the shared test stack): every invariant
 * must hold, and the disruptions and faults must really have happened.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { assertChaosInvariants } from './support/chaos-invariants';

const ROOT = path.resolve(__dirname, '..');
const RESULTS = path.join(ROOT, 'tools', 'chaos', 'results', 'test-quick.json');

test('chaos soak, quick preset: worker kills, Temporal and PostgreSQL restarts, provider faults', { timeout: 200_000 }, async (t) => {
  rmSync(RESULTS, { force: true });
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools', 'chaos', 'main.ts'), '--quick', '--name', 'chaos-test', '--output', RESULTS], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  const tableAt = output.indexOf('| metric');
  t.diagnostic(tableAt >= 0 ? output.slice(output.lastIndexOf('\n+', tableAt) + 1).trim() : output.split('\n').slice(-60).join('\n'));
  assert.equal(code, 0, `npm run chaos -- --quick exited with ${code}:\n${output.split('\n').slice(-80).join('\n')}`);

  const result = JSON.parse(readFileSync(RESULTS, 'utf8'));
  for (const key of ['batches', 'jobs', 'workerKills', 'serverRestarts', 'postgresRestarts', 'faultsInjected', 'lost',
    'duplicateProviderBatches', 'duplicateHandlerEffects', 'stalled', 'deadLetterMismatches', 'durationSeconds']) {
    assert.equal(typeof result[key], 'number', `${key} is in the results`);
  }
  assertChaosInvariants(result);
  assert.ok(result.batches >= 40 && result.jobs >= 20, 'a mix of batches and jobs');
  assert.ok(result.workerKills >= 1, 'workers were SIGKILLed');
  assert.ok(result.serverRestarts >= 2, 'Temporal restarted at least twice');
  assert.ok(result.postgresRestarts >= 1, 'PostgreSQL restarted');
  assert.ok(result.details.faults.provider > 0 && result.details.faults.malformedLines + result.details.faults.missingLines > 0, 'faults injected');
  assert.ok(result.durationSeconds < 180, `quick preset took ${result.durationSeconds}s`);
  rmSync(path.join(ROOT, '.data', 'chaos-test'), { recursive: true, force: true });
});

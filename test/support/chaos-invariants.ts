/** The chaos soak's end checks as assertions, one per invariant so that a failure names it. */
import assert from 'node:assert/strict';
import type { ChaosResult } from '../../tools/chaos/options';

export function assertChaosInvariants(result: Pick<ChaosResult,
  'lost' | 'duplicateProviderBatches' | 'duplicateHandlerEffects' | 'stalled' | 'deadLetterMismatches' | 'passed' | 'failures'>): void {
  assert.equal(result.lost, 0, 'lost');
  assert.equal(result.duplicateProviderBatches, 0, 'provider batches created twice');
  assert.equal(result.duplicateHandlerEffects, 0, 'handler effects twice');
  assert.equal(result.stalled, 0, 'stalled');
  assert.equal(result.deadLetterMismatches, 0, 'dead letters in PostgreSQL and Temporal agree');
  assert.equal(result.passed, true, result.failures.join('; '));
}

import { addDeadLetteredRequests, getBatchForUpdate, startNextRound } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { hasResendableOutcomes, resendOrDeadLetterRequests } from '../db/requests-store';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';

/**
 * Starts a new round for requests that came back retryably errored, expired or missing and still have attempts
 * left; the rest are dead-lettered per request. Returns how many go into the new round (0: none, dispatch next).
 */
export function createPlanResubmission(deps: ActivityDeps) {
  const { pool } = deps;
  return async function planResubmission(input: { batchId: string }): Promise<{ resubmitted: number; deadLettered: number; round: number }> {
    const check = await hasResendableOutcomes(pool, input.batchId);
    if (!check) throw permanentFailure('UnknownBatch', `batch ${input.batchId} does not exist in PostgreSQL`);
    if (!check.resendable) return { resubmitted: 0, deadLettered: 0, round: check.round };
    return inTransaction(pool, async (db) => {
      const batch = await getBatchForUpdate(db, input.batchId);
      if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.batchId} does not exist in PostgreSQL`);
      const { resent, deadLettered } = await resendOrDeadLetterRequests(db, batch.id, batch.round, batch.maxRequestAttempts);
      if (deadLettered) await addDeadLetteredRequests(db, batch.id, batch.round, deadLettered);
      if (!resent) return { resubmitted: 0, deadLettered, round: batch.round };
      await startNextRound(db, batch.id, { round: batch.round + 1, requests: resent });
      return { resubmitted: resent, deadLettered, round: batch.round + 1 };
    });
  };
}

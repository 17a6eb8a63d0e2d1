import { QUEUE_LIMIT_CODES } from '../domain/admission';
import type { BatchStatus } from '../domain/statuses';
import { requeuePermit } from '../db/admissions-store';
import { getBatchForUpdate, markQueueLimited } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { resetRefusedParts } from '../db/provider-batches-store';
import { wakeGranted } from './admission';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';

/**
 * The provider refused the round for a full queue (`refusal`: the create call said so, or a part failed with
 * token_limit_exceeded): refused parts go back to unsubmitted, the batch back to `queued`, and its permit back to
 * waiting at its old place, not before `notBefore`.
 */
export function createRequeueRefusedBatch(deps: ActivityDeps) {
  const { pool } = deps;
  return async function requeueRefusedBatch(input: {
    batchId: string; notBefore: string; refusal: { code: string; message: string };
  }): Promise<{ status: BatchStatus; parts: number }> {
    const notBefore = new Date(input.notBefore);
    const { granted, parts } = await inTransaction(pool, async (db) => {
      const batch = await getBatchForUpdate(db, input.batchId);
      if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.batchId} does not exist in PostgreSQL`);
      const reset = await resetRefusedParts(db, batch.id, batch.round, QUEUE_LIMIT_CODES);
      await markQueueLimited(db, batch.id, {
        round: batch.round, code: input.refusal.code, message: input.refusal.message.slice(0, 300), parts: reset.length,
        refusedProviderBatchIds: reset.map((part) => part.providerBatchId).filter(Boolean), notBefore: input.notBefore,
      });
      const requeued = await requeuePermit(db, batch.id, batch.round, notBefore);
      return { granted: requeued.granted, parts: reset.length };
    });
    await wakeGranted(deps, granted, input.batchId);
    return { status: 'queued', parts };
  };
}


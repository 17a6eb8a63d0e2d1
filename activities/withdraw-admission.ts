import { releasePermits } from '../db/admissions-store';
import { getBatchForUpdate } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { cancelUnsubmittedParts } from '../db/provider-batches-store';
import { wakeGranted } from './admission';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';

/**
 * An operator cancel while the batch waits for admission: its permit is withdrawn (the next batches may go), parts
 * never submitted are canceled. Returns how many parts are still live at the provider (they are canceled there).
 */
export function createWithdrawAdmission(deps: ActivityDeps) {
  const { pool } = deps;
  return async function withdrawAdmission(input: { batchId: string }): Promise<{ liveParts: number }> {
    const { granted, live } = await inTransaction(pool, async (db) => {
      const batch = await getBatchForUpdate(db, input.batchId);
      if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.batchId} does not exist in PostgreSQL`);
      const parts = await cancelUnsubmittedParts(db, batch.id, batch.round);
      return { granted: await releasePermits(db, batch.id, batch.round), live: parts.live };
    });
    await wakeGranted(deps, granted, input.batchId);
    return { liveParts: live };
  };
}


import type { BatchRecord } from '../db/batches-store';
import { getBatch, getBatchWithParts } from '../db/batches-store';
import type { ProviderBatchRecord } from '../db/provider-batches-store';
import type { BatchProvider } from '../providers/types';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';

/** What every batch activity looks up first, failing permanently (no retry can fix it) when it is not there. */
export function batchLookup(deps: ActivityDeps) {
  return {
    async batch(batchId: string): Promise<BatchRecord> {
      const batch = await getBatch(deps.pool, batchId);
      if (!batch) throw permanentFailure('UnknownBatch', `batch ${batchId} does not exist in PostgreSQL`);
      return batch;
    },

    /** The batch with the parts of its current round, in one read. */
    async batchWithParts(batchId: string): Promise<{ batch: BatchRecord; parts: ProviderBatchRecord[] }> {
      const found = await getBatchWithParts(deps.pool, batchId);
      if (!found) throw permanentFailure('UnknownBatch', `batch ${batchId} does not exist in PostgreSQL`);
      return found;
    },

    provider(batch: BatchRecord): BatchProvider {
      const provider = deps.providers.get(batch.provider);
      if (!provider) throw permanentFailure('UnknownProvider', `no provider named '${batch.provider}' is configured on this worker`);
      return provider;
    },
  };
}

export type BatchLookup = ReturnType<typeof batchLookup>;

export function requireProviderBatchId(batch: BatchRecord): string {
  if (!batch.providerBatchId) throw permanentFailure('NotSubmitted', `batch ${batch.id} has no provider batch yet`);
  return batch.providerBatchId;
}

export const batchSubject = (batchId: string) => ({ kind: 'batch' as const, id: batchId });

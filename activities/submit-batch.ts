import { isQueueLimitCode } from '../domain/admission';
import type { RequestCounts } from '../domain/types';
import { ProviderError } from '../providers/errors';
import type { SubmitResult } from '../providers/types';
import { recordSubmission } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { aggregateParts, listParts, planParts, recordPartSubmitted } from '../db/provider-batches-store';
import { iterateRequestBodies } from '../db/requests-store';
import { batchLookup, batchSubject, requireProviderBatchId } from './batch-lookup';
import type { ActivityDeps } from './deps';
import type { StatusView } from './status-view';
import { trackStep } from './step-tracking';

/**
 * Creates the round's provider batches once: the requests are split into parts that fit the provider's limits, and
 * each part's provider id is stored the moment it comes back. A retried attempt first looks for a part an earlier
 * attempt created (provider metadata), so a lost response never makes a second provider batch.
 */
export function createSubmitBatch(deps: ActivityDeps) {
  const { pool } = deps;
  const lookup = batchLookup(deps);
  return async function submitBatch(input: { batchId: string }): Promise<StatusView & { providerBatchId: string; deadlineAt: string }> {
    return trackStep(pool, batchSubject(input.batchId), 'submit', async (attempt, tracking) => {
      let batch = await lookup.batch(input.batchId);
      const provider = lookup.provider(batch);
      if (batch.status === 'pending') {
        const round = batch.round;
        let parts = await inTransaction(pool, (db) => planParts(db, batch.id, round, provider.limits));
        let reconciled = 0;
        let raced = false;
        for (const [index, part] of parts.entries()) {
          if (part.providerBatchId) continue;
          const existing = attempt > 1 ? await provider.findExisting(part.tag) : null;
          if (existing) reconciled += 1;
          let submission: SubmitResult;
          try {
            submission = existing ?? (await provider.submit({
              batchId: part.tag,
              model: batch.model,
              ...(batch.endpoint ? { endpoint: batch.endpoint } : {}),
              requests: iterateRequestBodies(pool, batch.id, part),
            }));
          } catch (error) {
            // The provider's queue is full (Anthropic's and Gemini's 429 on create): not a failure of this step.
            // Parts created so far stay; the workflow requeues the batch and submits the rest once admitted again.
            if (!(error instanceof ProviderError) || !isQueueLimitCode(error.details.code)) throw error;
            return {
              providerBatchId: batch.providerBatchId ?? '',
              deadlineAt: (batch.deadlineAt ?? new Date(Date.now() + batch.maxAgeMs)).toISOString(),
              status: batch.status,
              counts: batch.requestCounts as RequestCounts,
              resultsAvailable: false,
              queueLimited: { code: error.details.code, message: error.message },
              attempt,
            };
          }
          const stored = await recordPartSubmitted(pool, part, {
            providerBatchId: submission.providerBatchId,
            status: submission.report.status,
            providerStatus: submission.report.rawStatus,
            counts: submission.report.counts,
            inputFileId: submission.inputFileId ?? null,
          });
          if (stored) parts[index] = stored;
          else raced = true;
        }
        // Another attempt stored a part's id first: read what it stored.
        if (raced) parts = await listParts(pool, batch.id, round);
        const aggregate = aggregateParts(parts);
        batch = await recordSubmission(pool, batch.id, {
          round,
          providerBatchId: parts[0].providerBatchId!,
          status: aggregate.status,
          providerStatus: aggregate.providerStatus,
          counts: aggregate.counts,
          parts: parts.length,
          reconciled,
        }, (params) => tracking.successSql(params));
      }
      return {
        providerBatchId: requireProviderBatchId(batch),
        deadlineAt: (batch.deadlineAt ?? new Date(Date.now() + batch.maxAgeMs)).toISOString(),
        status: batch.status,
        counts: batch.requestCounts as RequestCounts,
        resultsAvailable: false,
        attempt,
      };
    });
  };
}

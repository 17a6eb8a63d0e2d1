import { Context } from '@temporalio/activity';
import { priceFor } from '../domain/prices';
import { isTerminalBatchStatus } from '../domain/statuses';
import type { BatchStatus, ResultSummary } from '../domain/types';
import { completeResults } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { releaseBatchPermits } from './admission';
import { batchLookup, batchSubject } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { trackStep } from './step-tracking';
import { storePartResults, type LeftoverOutcome, type ResultAnomalies } from './store-part-results';

/**
 * Streams every result the provider has, part by part, into request_results (flat memory), fails requests with no
 * line as missing (or expired/canceled), prices the tokens, stamps results_fetched_at and applies the final status.
 */
export function createFetchResults(deps: ActivityDeps) {
  const { pool } = deps;
  const lookup = batchLookup(deps);
  return async function fetchResults(
    input: { batchId: string; finalStatus?: BatchStatus; reason?: string },
  ): Promise<ResultSummary & { status: BatchStatus; attempt: number }> {
    return trackStep(pool, batchSubject(input.batchId), 'fetch_results', async (attempt, tracking) => {
      const { batch, parts } = await lookup.batchWithParts(input.batchId);
      const provider = lookup.provider(batch);
      const finalStatus = input.finalStatus ?? (isTerminalBatchStatus(batch.status) ? batch.status : 'failed');
      const leftover = leftoverOutcome(finalStatus, input.reason);
      const anomalies: ResultAnomalies = { unknownIds: 0, malformedLines: 0, duplicateLines: 0 };
      if (!batch.resultsFetchedAt) {
        for (const part of parts) {
          if (part.resultsFetchedAt) continue;
          // The poll that saw the part finish already stored that it has results (and streamResults reads the
          // batch once more to find them); the provider is asked again only when that is not known.
          const resultsAvailable = part.providerBatchId !== null && ((isTerminalBatchStatus(part.status) && part.resultsAvailable)
            || (await provider.getStatus(part.providerBatchId)).resultsAvailable);
          const lines = resultsAvailable ? provider.streamResults(part.providerBatchId!) : [];
          const counted = await storePartResults(pool, part, lines, leftover, (progress) => Context.current().heartbeat(progress));
          anomalies.unknownIds += counted.unknownIds;
          anomalies.malformedLines += counted.malformedLines;
          anomalies.duplicateLines += counted.duplicateLines;
          // Counted once the part's transaction committed: a retried attempt does not count its lines twice.
          for (const [status, count] of Object.entries(counted.outcomes)) deps.metrics?.resultsIngested(batch.provider, status, count);
        }
      }
      const summary = await inTransaction(pool, (db) =>
        completeResults(db, batch.id, {
          leftoverStatus: leftover.status,
          leftoverMessage: leftover.message,
          finalStatus: input.finalStatus,
          // We cancelled the batch ourselves (deadline or operator): that decides its final status, whatever the
          // provider calls a cancelled batch (OpenAI: cancelled; Anthropic: ended).
          replaceable: input.finalStatus === 'expired' ? ['canceled', 'ended'] : input.finalStatus === 'canceled' ? ['ended'] : [],
          failure: input.finalStatus === 'expired' || input.finalStatus === 'failed'
            ? { code: input.finalStatus === 'expired' ? 'deadline_exceeded' : 'failed', message: input.reason ?? input.finalStatus }
            : undefined,
          ...anomalies,
          price: priceFor(deps.prices, batch.provider, batch.model),
        }, (params) => tracking.successSql(params)),
      );
      await releaseBatchPermits(deps, batch.id, batch.round);
      return { ...summary, attempt };
    });
  };
}

function leftoverOutcome(finalStatus: BatchStatus, reason: string | undefined): LeftoverOutcome {
  const status = finalStatus === 'expired' ? 'expired' : finalStatus === 'canceled' ? 'canceled' : 'missing';
  return {
    status,
    message: status === 'missing'
      ? `no result line for this request (batch ${finalStatus})`
      : `request not processed: batch ${finalStatus}${reason ? ` (${reason})` : ''}`,
  };
}

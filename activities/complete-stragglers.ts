import { Context } from '@temporalio/activity';
import { storableDiagnostic, jsonForStorage } from '../domain/storable-text';
import type { BatchStatus, ResultSummary } from '../domain/types';
import { completeResults, openSynchronousRound } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { listUnansweredRequests, moveUnansweredToNextRound } from '../db/requests-store';
import { insertSynchronousOutcome, type OutcomeRow } from '../db/results-store';
import { ProviderError } from '../providers/errors';
import { batchLookup, batchSubject } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';
import { trackStep } from './step-tracking';

const DEFAULT_REQUESTS_PER_SECOND = 5;
const PAGE = 500;

/**
 * The straggler fallback, after the provider batch was cancelled and its results stored: the requests it never
 * answered (missing, expired, canceled) move to a round of their own and go one by one through the provider's
 * synchronous API under the batch's rate limit; each answer is stored as that round's outcome, marked synchronous
 * and priced at the full rate. A retried attempt picks up where the last one stopped (requests with an outcome are
 * not sent again). `ended` (trigger `after`) makes the batch ended: every request had its chance; at the deadline it
 * stays expired.
 */
export function createCompleteStragglers(deps: ActivityDeps) {
  const { pool } = deps;
  const lookup = batchLookup(deps);
  return async function completeStragglers(
    input: { batchId: string; fromRound: number; finalStatus?: BatchStatus },
  ): Promise<ResultSummary & { status: BatchStatus; attempt: number; synchronous: number; round: number }> {
    return trackStep(pool, batchSubject(input.batchId), 'complete_stragglers', async (attempt) => {
      const batch = await lookup.batch(input.batchId);
      const provider = lookup.provider(batch);
      if (!provider.completeSynchronously) {
        throw permanentFailure('NoSynchronousApi', `provider ${batch.provider} has no synchronous API for the straggler fallback`);
      }
      const complete = provider.completeSynchronously.bind(provider);
      const round = input.fromRound + 1;
      let currentRound = batch.round;
      if (batch.round === input.fromRound) {
        // Nothing unanswered (the provider finished while it was being cancelled): no round of its own.
        const opened = await inTransaction(pool, async (db) => {
          const moved = await moveUnansweredToNextRound(db, batch.id, input.fromRound);
          return moved > 0 && (await openSynchronousRound(db, batch.id, input.fromRound, moved));
        });
        if (opened) currentRound = round;
      } else if (batch.round !== round) {
        throw permanentFailure('RoundMoved', `batch ${batch.id} is in round ${batch.round}, not ${input.fromRound} or ${round}`);
      }

      const perSecond = batch.stragglers?.maxRequestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND;
      const spacingMs = 1000 / perSecond;
      const price = deps.prices?.models[batch.provider]?.[batch.model] ?? null;
      let sent = 0;
      let nextAt = Date.now();
      for (;;) {
        const page = await listUnansweredRequests(pool, batch.id, round, PAGE);
        if (page.length === 0) break;
        for (const request of page) {
          const wait = nextAt - Date.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          nextAt = Math.max(nextAt + spacingMs, Date.now());
          let outcome: OutcomeRow;
          try {
            const answered = await complete(batch.model, { customId: request.customId, params: request.params });
            const { json, unstorable } = jsonForStorage(answered.result, 'result');
            const tokens = answered.usage ? { inputTokens: answered.usage.inputTokens, outputTokens: answered.usage.outputTokens } : {};
            outcome = unstorable
              ? { status: 'errored', errorCode: 'unstorable_result', retryable: true, errorMessage: `the provider's answer cannot be stored: ${unstorable.path} ${unstorable.problem}`, ...tokens }
              : { status: 'succeeded', ...(json !== undefined ? { resultJson: json } : {}), ...tokens };
          } catch (error) {
            if (!(error instanceof ProviderError)) throw error;
            outcome = {
              status: 'errored', errorCode: error.details.code, retryable: error.details.retryable,
              errorMessage: storableDiagnostic(`synchronous fallback: ${error.message}`).slice(0, 2000),
            };
          }
          const cost = price && outcome.inputTokens !== undefined
            ? ((outcome.inputTokens * price.inputPerMTokUsd + (outcome.outputTokens ?? 0) * price.outputPerMTokUsd) / 1_000_000).toFixed(8)
            : null;
          await insertSynchronousOutcome(pool, batch.id, round, request.position, outcome, cost);
          sent += 1;
          Context.current().heartbeat({ sent });
        }
      }

      const summary = await inTransaction(pool, (db) => completeResults(db, batch.id, {
        leftoverStatus: 'missing', leftoverMessage: 'no synchronous answer for this request',
        finalStatus: input.finalStatus,
        replaceable: input.finalStatus === 'ended' ? ['canceled', 'expired'] : [],
        unknownIds: 0, malformedLines: 0, duplicateLines: 0,
      }));
      return { ...summary, attempt, synchronous: sent, round: currentRound };
    });
  };
}

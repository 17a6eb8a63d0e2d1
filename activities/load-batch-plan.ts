import { budgetFor } from '../domain/admission';
import { resolveRetry } from '../domain/retry-policy';
import { admissionConfig } from './admission';
import type { BatchPlan, BatchStep, RetrySettings } from '../domain/types';
import { batchLookup } from './batch-lookup';
import type { ActivityDeps } from './deps';

const BATCH_STEPS: BatchStep[] = ['submit', 'poll', 'cancel', 'fetch_results', 'complete_stragglers', 'dispatch_handler', 'delete_files'];

/** What the workflow needs to run (or resume) a batch, with every step's retry settings resolved. */
export function createLoadBatchPlan(deps: ActivityDeps) {
  const lookup = batchLookup(deps);
  return async function loadBatchPlan(input: { batchId: string }): Promise<BatchPlan> {
    const batch = await lookup.batch(input.batchId);
    const config = admissionConfig(deps);
    const retry = Object.fromEntries(
      BATCH_STEPS.map((step) => [step, resolveRetry(deps.retry ?? {}, step, { handlerName: batch.handlerName })]),
    ) as Record<BatchStep, RetrySettings>;
    return {
      batchId: batch.id,
      provider: batch.provider,
      model: batch.model,
      handlerName: batch.handlerName,
      requestCount: batch.requestCount,
      status: batch.status,
      providerBatchId: batch.providerBatchId,
      pollScheduleMs: batch.pollScheduleMs,
      maxAgeMs: batch.maxAgeMs,
      deadlineAt: batch.deadlineAt?.toISOString() ?? null,
      resultsFetched: batch.resultsFetchedAt !== null,
      handlerDispatched: batch.handlerDispatchedAt !== null,
      // Not lookup.provider(): a plan must load even when the provider is not configured here (a later step says so).
      deletesProviderFiles: deps.providers.get(batch.provider)?.deleteFiles !== undefined,
      retry,
      ...(batch.stragglers ? { stragglers: batch.stragglers, submittedAt: batch.submittedAt?.toISOString() ?? null } : {}),
      admission: {
        budgeted: budgetFor(config, batch.provider, batch.model) !== null,
        recheckMs: config.recheckMs,
        queueLimitBackoff: config.queueLimitBackoff,
      },
    };
  };
}

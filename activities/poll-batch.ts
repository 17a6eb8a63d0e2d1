import { isTerminalBatchStatus } from '../domain/statuses';
import { releaseBatchPermits } from './admission';
import { batchLookup, batchSubject } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { refreshParts } from './refresh-parts';
import type { StatusView } from './status-view';
import { trackStep } from './step-tracking';

/** Reads the status of every unfinished part once and records the batch's combined status. */
export function createPollBatch(deps: ActivityDeps) {
  const lookup = batchLookup(deps);
  /**
   * `plannedAt`: when the workflow's timer was due to start this poll (absent for a poll-now or a settle poll, and
   * from workflows started before it was passed); the first attempt reports how late it began.
   */
  return async function pollBatch(input: { batchId: string; nextPollAt: string | null; plannedAt?: string }): Promise<StatusView> {
    return trackStep(deps.pool, batchSubject(input.batchId), 'poll', async (attempt, tracking) => {
      const { batch, parts } = await lookup.batchWithParts(input.batchId);
      const provider = lookup.provider(batch);
      if (input.plannedAt && attempt === 1) deps.metrics?.pollLateness(batch.provider, Date.now() - Date.parse(input.plannedAt));
      const view = await refreshParts(deps.pool, batch, parts, input.nextPollAt, (id) => provider.getStatus(id), tracking);
      // The round's provider batches ended: its permit frees (a queue-limit refusal keeps it, to be requeued).
      if (isTerminalBatchStatus(view.status) && !view.queueLimited) await releaseBatchPermits(deps, batch.id, batch.round);
      return { ...view, attempt };
    });
  };
}

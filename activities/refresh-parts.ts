import type { Pool } from 'pg';
import { isQueueLimitCode } from '../domain/admission';
import { isTerminalBatchStatus } from '../domain/statuses';
import { recordPoll, type BatchRecord } from '../db/batches-store';
import { aggregateParts, applyPartReport, type PartReport, type ProviderBatchRecord } from '../db/provider-batches-store';
import type { ProviderStatusReport } from '../providers/types';
import { requireProviderBatchId } from './batch-lookup';
import type { StatusView } from './status-view';
import type { StepAttempt } from './step-tracking';

/**
 * Applies `read` (a status read or a cancel) to every unfinished part, then records the parts, the combined status
 * and (given `tracking`) the step's success in one statement: a poll costs one read and one write.
 */
export async function refreshParts(
  pool: Pool,
  batch: BatchRecord,
  parts: ProviderBatchRecord[],
  nextPollAt: string | null,
  read: (providerBatchId: string) => Promise<ProviderStatusReport>,
  tracking?: StepAttempt,
): Promise<Omit<StatusView, 'attempt'>> {
  requireProviderBatchId(batch);
  const reports: PartReport[] = [];
  const current = [...parts];
  for (const [index, part] of parts.entries()) {
    if (!part.providerBatchId || isTerminalBatchStatus(part.status)) continue;
    const reading = await read(part.providerBatchId);
    const report: PartReport = {
      part: part.part, status: reading.status, providerStatus: reading.rawStatus, counts: reading.counts,
      resultsAvailable: reading.resultsAvailable, failure: reading.failure, resultFileIds: reading.resultFileIds,
    };
    reports.push(report);
    current[index] = applyPartReport(part, report);
  }
  const aggregate = aggregateParts(current);
  const { status } = await recordPoll(pool, batch.id, {
    status: aggregate.status,
    providerStatus: aggregate.providerStatus,
    counts: aggregate.counts,
    nextPollAt: nextPollAt ? new Date(nextPollAt) : null,
    failure: aggregate.failure,
  }, { parts: { round: batch.round, reports }, step: tracking });
  // A part the provider failed for a full queue: once every part has settled, the workflow requeues the round.
  const refused = current.find((part) => part.status === 'failed' && isQueueLimitCode(part.failureCode));
  return {
    status, counts: aggregate.counts, resultsAvailable: current.every((part) => part.resultsAvailable),
    ...(refused ? { queueLimited: { code: refused.failureCode!, message: refused.failureMessage ?? refused.failureCode! } } : {}),
  };
}

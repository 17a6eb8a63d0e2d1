import { Context } from '@temporalio/activity';
import type { PoolClient } from 'pg';
import type {
  BatchOutcome, BatchStatus, BatchStep, RequestCounts, RequestStatus, ResultSummary, RetrySettings,
} from '../domain/types';
import { isTerminalBatchStatus } from '../domain/types';
import {
  completeResults, getBatch, getBatchForUpdate, getBatchWithParts, hasRetryableOutcomes, iterateRequestBodies, listRequests, markHandlerDispatched,
  planResubmission, recordPoll, recordSubmission, setDeadline, summarizeRequests, type BatchRecord,
} from '../db/batches-store';
import { partPositions, ResultsCopy, type StoredOutcome } from '../db/results-store';
import {
  aggregateParts, applyPartReport, listParts, markPartResultsFetched, planParts, recordPartSubmitted, type PartReport,
  type ProviderBatchRecord,
} from '../db/provider-batches-store';
import { limitsFor } from '../domain/provider-limits';
import { priceFor } from '../domain/prices';
import { appendEvent } from '../db/events-store';
import { inTransaction } from '../db/pool';
import type { BatchProvider, ProviderResultLine, ProviderStatusReport } from '../providers/types';
import type { ActivityDeps } from './deps';
import { registered } from './handlers';
import { permanentFailure } from './failures';
import { resolveRetry } from '../domain/retry-policy';
import { trackStep, type StepAttempt } from './step-tracking';

const BATCH_STEPS: BatchStep[] = ['submit', 'poll', 'cancel', 'fetch_results', 'dispatch_handler'];

/** What the workflow needs to run (or resume) a batch; ids, timestamps and settings only. */
export interface BatchPlan {
  batchId: string;
  provider: string;
  model: string;
  handlerName: string | null;
  requestCount: number;
  status: BatchStatus;
  providerBatchId: string | null;
  pollScheduleMs: number[];
  maxAgeMs: number;
  deadlineAt: string | null;
  resultsFetched: boolean;
  handlerDispatched: boolean;
  retry: Record<BatchStep, RetrySettings>;
}

export interface StatusView {
  status: BatchStatus;
  counts: RequestCounts;
  resultsAvailable: boolean;
  attempt: number;
}

export function createBatchActivities(deps: ActivityDeps) {
  const { pool } = deps;

  async function requireBatch(batchId: string): Promise<BatchRecord> {
    const batch = await getBatch(pool, batchId);
    if (!batch) throw permanentFailure('UnknownBatch', `batch ${batchId} does not exist in PostgreSQL`);
    return batch;
  }

  function providerFor(batch: BatchRecord): BatchProvider {
    const provider = deps.providers.get(batch.provider);
    if (!provider) {
      throw permanentFailure('UnknownProvider', `no provider named '${batch.provider}' is configured on this worker`);
    }
    return provider;
  }

  function requireProviderBatchId(batch: BatchRecord): string {
    if (!batch.providerBatchId) throw permanentFailure('NotSubmitted', `batch ${batch.id} has no provider batch yet`);
    return batch.providerBatchId;
  }

  const batchSubject = (batchId: string) => ({ kind: 'batch' as const, id: batchId });

  return {
    async loadBatchPlan(input: { batchId: string }): Promise<BatchPlan> {
      const batch = await requireBatch(input.batchId);
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
        retry,
      };
    },

    /**
     * Creates the round's provider batches once: the requests are split into parts that fit the provider's limits,
     * and each part's provider id is stored the moment it comes back. A retried attempt first looks for a part an
     * earlier attempt created (provider metadata), so a lost response never makes a second provider batch.
     */
    async submitBatch(input: { batchId: string }): Promise<StatusView & { providerBatchId: string; deadlineAt: string }> {
      return trackStep(pool, batchSubject(input.batchId), 'submit', async (attempt, tracking) => {
        let batch = await requireBatch(input.batchId);
        const provider = providerFor(batch);
        if (batch.status === 'pending') {
          const round = batch.round;
          let parts = await inTransaction(pool, (db) => planParts(db, batch.id, round, limitsFor(batch.provider)));
          let reconciled = 0;
          let raced = false;
          for (const [index, part] of parts.entries()) {
            if (part.providerBatchId) continue;
            const existing = attempt > 1 ? await provider.findExisting(part.tag) : null;
            if (existing) reconciled += 1;
            const submission = existing ?? (await provider.submit({
              batchId: part.tag,
              model: batch.model,
              requests: iterateRequestBodies(pool, batch.id, part),
            }));
            const stored = await recordPartSubmitted(pool, part, {
              providerBatchId: submission.providerBatchId,
              status: submission.report.status,
              providerStatus: submission.report.rawStatus,
              counts: submission.report.counts,
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
    },

    /** Reads the status of every unfinished part once and records the batch's combined status. */
    async pollBatch(input: { batchId: string; nextPollAt: string | null }): Promise<StatusView> {
      return trackStep(pool, batchSubject(input.batchId), 'poll', async (attempt, tracking) => {
        const { batch, parts } = await requireBatchWithParts(input.batchId);
        const provider = providerFor(batch);
        return { ...(await refreshParts(batch, parts, input.nextPollAt, (id) => provider.getStatus(id), tracking)), attempt };
      });
    },

    /** Asks the provider to cancel every unfinished part; they settle to terminal statuses that later polls pick up. */
    async cancelAtProvider(input: { batchId: string; reason: string }): Promise<StatusView> {
      return trackStep(pool, batchSubject(input.batchId), 'cancel', async (attempt) => {
        const { batch, parts } = await requireBatchWithParts(input.batchId);
        const provider = providerFor(batch);
        const view = await refreshParts(batch, parts, null, (id) => provider.cancel(id));
        await appendEvent(pool, 'batch', batch.id, 'cancel_requested', { detail: { reason: input.reason } });
        return { ...view, attempt };
      });
    },

    /**
     * Streams every result the provider has, part by part, into batch_requests in chunks (flat memory), fails
     * requests with no line as missing (or expired/canceled), prices the tokens, stamps results_fetched_at and
     * applies the final status.
     */
    async fetchResults(input: { batchId: string; finalStatus?: BatchStatus; reason?: string }): Promise<ResultSummary & { status: BatchStatus; attempt: number }> {
      return trackStep(pool, batchSubject(input.batchId), 'fetch_results', async (attempt, tracking) => {
        const { batch, parts } = await requireBatchWithParts(input.batchId);
        const provider = providerFor(batch);
        const finalStatus = input.finalStatus ?? (isTerminalBatchStatus(batch.status) ? batch.status : 'failed');
        const leftoverStatus = finalStatus === 'expired' ? 'expired' : finalStatus === 'canceled' ? 'canceled' : 'missing';
        const leftover = {
          status: leftoverStatus,
          message: leftoverStatus === 'missing'
            ? `no result line for this request (batch ${finalStatus})`
            : `request not processed: batch ${finalStatus}${input.reason ? ` (${input.reason})` : ''}`,
        } as const;
        let unknownIds = 0;
        let malformedLines = 0;
        if (!batch.resultsFetchedAt) {
          for (const part of parts) {
            if (part.resultsFetchedAt) continue;
            // The poll that saw the part finish already stored that it has results (and streamResults reads the
            // batch once more to find them); the provider is asked again only when that is not known.
            const resultsAvailable = part.providerBatchId !== null && ((isTerminalBatchStatus(part.status) && part.resultsAvailable)
              || (await provider.getStatus(part.providerBatchId)).resultsAvailable);
            const counted = await storePartResults(part, resultsAvailable ? provider.streamResults(part.providerBatchId!) : [], leftover);
            unknownIds += counted.unknownIds;
            malformedLines += counted.malformedLines;
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
            unknownIds,
            malformedLines,
            price: priceFor(deps.prices, batch.provider, batch.model),
          }, (params) => tracking.successSql(params)),
        );
        return { ...summary, attempt };
      });
    },

    /**
     * Starts a new round for requests that came back retryably errored, expired or missing and still have attempts
     * left; the rest are dead-lettered per request. Returns how many go into the new round (0: none, dispatch next).
     */
    async planResubmission(input: { batchId: string }): Promise<{ resubmitted: number; deadLettered: number; round: number }> {
      const check = await hasRetryableOutcomes(pool, input.batchId);
      if (!check) throw new Error(`batch ${input.batchId} does not exist`);
      if (!check.retryable) return { resubmitted: 0, deadLettered: 0, round: check.round };
      return inTransaction(pool, (db) => planResubmission(db, input.batchId));
    },

    /**
     * Calls the completion handler once: only after results are stored, and stamped in the same transaction as the
     * handler's own writes.
     */
    async dispatchHandler(input: { batchId: string }): Promise<{ dispatched: boolean; outcome: BatchOutcome; attempt: number }> {
      return trackStep(pool, batchSubject(input.batchId), 'dispatch_handler', async (attempt, tracking) => {
        return inTransaction(pool, async (db) => {
          const batch = await getBatchForUpdate(db, input.batchId);
          if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.batchId} does not exist in PostgreSQL`);
          if (!batch.resultsFetchedAt) throw permanentFailure('ResultsNotFetched', `batch ${batch.id} has no stored results yet`);
          if (!isTerminalBatchStatus(batch.status)) throw permanentFailure('NotTerminal', `batch ${batch.id} is still ${batch.status}`);
          const outcome = batch.status as BatchOutcome;
          if (batch.handlerDispatchedAt) return { dispatched: false, outcome, attempt };
          if (batch.handlerName) {
            const handler = registered(deps.handlers, batch.handlerName);
            if (!handler) {
              throw permanentFailure('UnknownHandler', `no completion handler named '${batch.handlerName}' is registered on this worker`);
            }
            const summary = await summarizeRequests(db, batch.id);
            await handler.onComplete({
              batch,
              outcome,
              summary,
              db,
              results: (options = {}) => pageRequests(db, batch.id, options.pageSize ?? 500, options.status),
            });
          }
          // The step's success commits with the stamp: the transaction's commit is all that can still fail.
          await markHandlerDispatched(db, batch.id, outcome, (params) => tracking.successSql(params));
          return { dispatched: true, outcome, attempt };
        });
      });
    },

    /** Stores a new deadline set by an operator. */
    async recordDeadline(input: { batchId: string; deadlineAt: string }): Promise<void> {
      await setDeadline(pool, input.batchId, new Date(input.deadlineAt));
    },
  };

  async function requireBatchWithParts(batchId: string): Promise<{ batch: BatchRecord; parts: ProviderBatchRecord[] }> {
    const found = await getBatchWithParts(pool, batchId);
    if (!found) throw permanentFailure('UnknownBatch', `batch ${batchId} does not exist in PostgreSQL`);
    return found;
  }

  /**
   * Applies `read` (a status read or a cancel) to every unfinished part, then records the parts, the combined status
   * and (given `tracking`) the step's success in one statement.
   */
  async function refreshParts(
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
        resultsAvailable: reading.resultsAvailable, failure: reading.failure,
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
    return { status, counts: aggregate.counts, resultsAvailable: current.every((part) => part.resultsAvailable) };
  }

  /**
   * Streams one part's result file into request_results with COPY, then one `leftover` outcome for each of the
   * part's requests that had no line, in one transaction that also marks the part's results fetched: a part's
   * outcomes land all at once or not at all, and a retried attempt starts clean. Lines are joined to requests by
   * provider-side id; lines for ids never submitted and repeated lines are counted, not stored.
   */
  async function storePartResults(
    part: ProviderBatchRecord,
    blocks: AsyncIterable<ProviderResultLine[]> | Iterable<ProviderResultLine[]>,
    leftover: { status: 'missing' | 'expired' | 'canceled'; message: string },
  ) {
    return inTransaction(pool, async (db) => {
      const positions = await partPositions(db, part);
      const copy = new ResultsCopy(db, part.batchId, part.round);
      let unknownIds = 0;
      let duplicateLines = 0;
      let malformedLines = 0;
      let seen = 0;
      try {
        for await (const block of blocks) {
          for (const line of block) {
            if (line.kind === 'malformed') malformedLines += 1;
            const outcome = toStoredOutcome(line);
            if (!outcome) continue;
            const position = positions.get(outcome.customId);
            if (position === undefined) unknownIds += 1;
            else if (position === STORED) duplicateLines += 1;
            else {
              positions.set(outcome.customId, STORED);
              const behind = copy.write(position, outcome);
              if (behind) await behind;
            }
          }
          const before = seen;
          seen += block.length;
          if (Math.floor(seen / HEARTBEAT_EVERY_LINES) > Math.floor(before / HEARTBEAT_EVERY_LINES)) {
            Context.current().heartbeat({ part: part.part, lines: seen });
          }
        }
        const left = { status: leftover.status, errorCode: leftover.status, errorMessage: leftover.message, retryable: true };
        for (const position of positions.values()) {
          if (position === STORED) continue;
          const behind = copy.write(position, left);
          if (behind) await behind;
        }
      } catch (error) {
        await copy.abort(error as Error);
        throw error;
      }
      await copy.end();
      await markPartResultsFetched(db, part);
      if (unknownIds || malformedLines || duplicateLines) {
        await appendEvent(db, 'batch', part.batchId, 'results_anomalies', { detail: { part: part.part, unknownIds, malformedLines, duplicateLines } });
      }
      return { unknownIds, malformedLines };
    });
  }
}

/** Marks a provider id whose result is already stored in this part (a repeated line is not stored twice). */
const STORED = -1;
const HEARTBEAT_EVERY_LINES = 1000;

async function* pageRequests(db: PoolClient, batchId: string, pageSize: number, status?: RequestStatus) {
  let afterPosition = -1;
  for (;;) {
    const page = await listRequests(db, batchId, { afterPosition, limit: pageSize, status });
    yield* page;
    if (page.length < pageSize) return;
    afterPosition = page[page.length - 1].position;
  }
}

/** One provider line to one stored outcome; a malformed line fails only the request it names. */
function toStoredOutcome(line: ProviderResultLine): StoredOutcome | null {
  switch (line.kind) {
    case 'succeeded':
      return {
        customId: line.customId, status: 'succeeded', result: line.result,
        inputTokens: line.usage?.inputTokens, outputTokens: line.usage?.outputTokens,
      };
    case 'malformed':
      return line.customId
        ? { customId: line.customId, status: 'errored', errorCode: 'malformed_result', errorMessage: line.errorMessage, retryable: true }
        : null;
    default:
      return {
        customId: line.customId, status: line.kind, errorCode: line.errorCode, errorMessage: line.errorMessage,
        retryable: line.retryable, inputTokens: line.usage?.inputTokens, outputTokens: line.usage?.outputTokens,
      };
  }
}

export type BatchActivities = ReturnType<typeof createBatchActivities>;

import type { ResolvedPrice } from '../domain/prices';
import type { ClientBase } from 'pg';
import { isTerminalBatchStatus, TERMINAL_BATCH_STATUSES, type BatchStatus } from '../domain/statuses';
import type { RequestCounts, ResultSummary, StragglerPolicy } from '../domain/types';
import { appendEvent, eventSql, statusChangeEventSql } from './events-store';
import { CURRENT_PARTS_JSON, partReportsSql, toRecord as toPartRecord, type PartReport, type ProviderBatchRecord } from './provider-batches-store';
import type { Queryable } from './queryable';
import { insertRequests, type NewRequest } from './requests-store';
import { insertUnplannedLeftovers, outcomeTotals, type OutcomeTotals } from './results-store';
import { SqlParams, type StatementPart } from './sql-params';

/**
 * SQL for the batches table: the one writer of a batch's status, through named transitions that each log their
 * change in event_log in the same statement. Requests: requests-store.ts; outcomes: results-store.ts.
 */

export interface BatchRecord {
  id: string;
  idempotencyKey: string;
  workflowId: string;
  provider: string;
  model: string;
  status: BatchStatus;
  providerBatchId: string | null;
  providerStatus: string | null;
  handlerName: string | null;
  metadata: Record<string, unknown>;
  requestCount: number;
  requestCounts: Partial<RequestCounts>;
  pollScheduleMs: number[];
  maxAgeMs: number;
  pollCount: number;
  lastPolledAt: Date | null;
  nextPollAt: Date | null;
  createdAt: Date;
  submittedAt: Date | null;
  deadlineAt: Date | null;
  endedAt: Date | null;
  resultsFetchedAt: Date | null;
  handlerDispatchedAt: Date | null;
  failedAt: Date | null;
  failureCode: string | null;
  failureMessage: string | null;
  inputTokens: number;
  outputTokens: number;
  /** Of inputTokens: read from the prompt cache / written to it; of outputTokens: reasoning (priced apart, see domain/prices.ts). */
  cachedInputTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** The provider endpoint the batch's requests go to; null: the worker's configured one (chat completions). */
  endpoint: string | null;
  /** Submission round: 1, then one more per resubmission of failed requests. */
  round: number;
  maxRequestAttempts: number;
  costUsd: number | null;
  deadLetteredRequests: number;
  /** The straggler fallback, when the batch has one. */
  stragglers: StragglerPolicy | null;
}

export interface NewBatch {
  id: string;
  idempotencyKey: string;
  workflowId: string;
  provider: string;
  model: string;
  handlerName: string | null;
  metadata: Record<string, unknown>;
  pollScheduleMs: number[];
  maxAgeMs: number;
  maxRequestAttempts?: number;
  stragglers?: StragglerPolicy | null;
  endpoint?: string | null;
  requests: readonly NewRequest[];
}

const BATCH_COLUMNS = `id, idempotency_key, workflow_id, provider, model, status, provider_batch_id, provider_status, handler_name,
  metadata, request_count, request_counts, poll_schedule_ms, max_age_ms, poll_count, last_polled_at, next_poll_at, created_at,
  submitted_at, deadline_at, ended_at, results_fetched_at, handler_dispatched_at, failed_at, failure_code, failure_message,
  input_tokens, output_tokens, round, max_request_attempts, cost_usd, dead_lettered_requests, stragglers, cached_input_tokens,
  cache_write_tokens, reasoning_tokens, endpoint`;

function toBatchRecord(row: Record<string, any>): BatchRecord {
  return {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    workflowId: row.workflow_id,
    provider: row.provider,
    model: row.model,
    status: row.status,
    providerBatchId: row.provider_batch_id,
    providerStatus: row.provider_status,
    handlerName: row.handler_name,
    metadata: row.metadata,
    requestCount: row.request_count,
    requestCounts: row.request_counts,
    pollScheduleMs: row.poll_schedule_ms,
    maxAgeMs: Number(row.max_age_ms),
    pollCount: row.poll_count,
    lastPolledAt: row.last_polled_at,
    nextPollAt: row.next_poll_at,
    createdAt: row.created_at,
    submittedAt: row.submitted_at,
    deadlineAt: row.deadline_at,
    endedAt: row.ended_at,
    resultsFetchedAt: row.results_fetched_at,
    handlerDispatchedAt: row.handler_dispatched_at,
    failedAt: row.failed_at,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    inputTokens: Number(row.input_tokens),
    outputTokens: Number(row.output_tokens),
    cachedInputTokens: Number(row.cached_input_tokens ?? 0),
    cacheWriteTokens: Number(row.cache_write_tokens ?? 0),
    reasoningTokens: Number(row.reasoning_tokens ?? 0),
    endpoint: row.endpoint ?? null,
    round: row.round,
    maxRequestAttempts: row.max_request_attempts,
    costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
    deadLetteredRequests: row.dead_lettered_requests,
    stragglers: row.stragglers ?? null,
  };
}

/** Inserts the batch and all its requests. Call inside a transaction so a rejected submission writes nothing. */
export async function insertBatch(db: ClientBase, batch: NewBatch): Promise<void> {
  await db.query(
    `INSERT INTO batches (id, idempotency_key, workflow_id, provider, model, handler_name, metadata, request_count,
                          poll_schedule_ms, max_age_ms, max_request_attempts, stragglers, endpoint)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
    [
      batch.id, batch.idempotencyKey, batch.workflowId, batch.provider, batch.model, batch.handlerName, batch.metadata,
      batch.requests.length, batch.pollScheduleMs, batch.maxAgeMs, batch.maxRequestAttempts ?? 1, batch.stragglers ?? null, batch.endpoint ?? null,
    ],
  );
  await insertRequests(db, batch.id, batch.requests);
  await appendEvent(db, 'batch', batch.id, 'created', { toStatus: 'pending', detail: { requests: batch.requests.length } });
}

export async function getBatch(db: Queryable, batchId: string): Promise<BatchRecord | null> {
  const { rows } = await db.query(`SELECT ${BATCH_COLUMNS} FROM batches WHERE id = $1`, [batchId]);
  return rows[0] ? toBatchRecord(rows[0]) : null;
}

/** The batch and the parts of its current round, in one round trip (every poll starts here). */
export async function getBatchWithParts(db: Queryable, batchId: string): Promise<{ batch: BatchRecord; parts: ProviderBatchRecord[] } | null> {
  const { rows } = await db.query(`SELECT ${BATCH_COLUMNS}, ${CURRENT_PARTS_JSON} AS parts FROM batches b WHERE b.id = $1`, [batchId]);
  if (!rows[0]) return null;
  return { batch: toBatchRecord(rows[0]), parts: (rows[0].parts as Record<string, unknown>[]).map(toPartRecord) };
}

export async function getBatchForUpdate(db: Queryable, batchId: string): Promise<BatchRecord | null> {
  const { rows } = await db.query(`SELECT ${BATCH_COLUMNS} FROM batches WHERE id = $1 FOR UPDATE`, [batchId]);
  return rows[0] ? toBatchRecord(rows[0]) : null;
}

export async function findBatchByIdempotencyKey(db: Queryable, key: string): Promise<BatchRecord | null> {
  const { rows } = await db.query(`SELECT ${BATCH_COLUMNS} FROM batches WHERE idempotency_key = $1`, [key]);
  return rows[0] ? toBatchRecord(rows[0]) : null;
}

/**
 * Marks the round submitted once all its parts have provider ids: submitted_at and the deadline (max age from now)
 * are set once per round. The first part's id is kept on the batch for display.
 */
export async function recordSubmission(
  db: Queryable,
  batchId: string,
  submission: {
    round: number; providerBatchId: string; status: BatchStatus; providerStatus: string; counts: RequestCounts; parts: number; reconciled: number;
  },
  /** Written in the same statement (the submit step's success). */
  also?: StatementPart,
): Promise<BatchRecord> {
  const submitted = await transition(db, batchId, submission.status === 'pending' ? 'submitted' : submission.status, 'submitted', {
    provider_batch_id: { coalesce: submission.providerBatchId },
    provider_status: submission.providerStatus,
    request_counts: submission.counts,
    submitted_at: { raw: 'now()' },
    deadline_at: { raw: 'now() + make_interval(secs => b.max_age_ms / 1000.0)' },
  }, {
    providerBatchId: submission.providerBatchId,
    round: submission.round,
    parts: submission.parts,
    reconciledParts: submission.reconciled,
  }, [], { onlyFrom: 'pending', also: also ? [also] : [] });
  if (submitted) return submitted.batch;
  // Already submitted (a retried attempt after the write): nothing changes.
  const batch = await getBatch(db, batchId);
  if (!batch) throw new Error(`batch ${batchId} does not exist`);
  return batch;
}

export async function recordPoll(
  db: Queryable,
  batchId: string,
  poll: {
    status: BatchStatus;
    providerStatus: string;
    counts: RequestCounts;
    nextPollAt: Date | null;
    failure?: { code: string; message: string };
  },
  /** Written in the same statement: the parts' status reads, and the poll step's success (step-tracking). */
  also: { parts?: { round: number; reports: PartReport[] }; step?: { successSql: StatementPart } } = {},
): Promise<{ status: BatchStatus }> {
  const terminal = isTerminalBatchStatus(poll.status);
  const set: Record<string, unknown> = {
    provider_status: poll.providerStatus,
    request_counts: poll.counts,
    poll_count: { raw: 'poll_count + 1' },
    last_polled_at: { raw: 'now()' },
    next_poll_at: terminal ? null : poll.nextPollAt,
  };
  if (terminal) set.ended_at = { raw: 'COALESCE(b.ended_at, now())' };
  if (poll.failure) {
    set.failure_code = poll.failure.code;
    set.failure_message = poll.failure.message;
    set.failed_at = { raw: 'COALESCE(b.failed_at, now())' };
  }
  const parts = also.parts;
  const extra: StatementPart[] = [];
  if (parts && parts.reports.length > 0) extra.push((params) => partReportsSql(params, batchId, parts.round, parts.reports));
  const step = also.step;
  if (step) extra.push((params) => step.successSql(params));
  const changed = await transition(db, batchId, poll.status, 'polled_status_changed', set, { providerStatus: poll.providerStatus }, [], { also: extra });
  return { status: changed!.status };
}

/**
 * Sets the status and logs the transition, unless the batch is already terminal (the first terminal write wins, so a
 * stale poll cannot overwrite an expiry). Extra columns are set in the same statement: a plain value is a parameter,
 * {coalesce: value} keeps a value already there, {raw: sql} is an SQL expression (constants of this module only,
 * never input). `also` adds other writes (CTE bodies) to the same statement, so they commit together. Private: the
 * exported transitions below are the only ways a batch's status changes.
 */
async function transition(
  db: Queryable,
  batchId: string,
  toStatus: BatchStatus,
  eventKind: string,
  set: Record<string, unknown>,
  detail: Record<string, unknown> = {},
  /** Terminal statuses this transition may still replace (our own deadline cancel ends as expired, not canceled). */
  replaceable: readonly BatchStatus[] = [],
  options: {
    also?: StatementPart[];
    /** Change the batch only while it has this status; returns null (nothing written) otherwise. */
    onlyFrom?: BatchStatus;
  } = {},
): Promise<{ fromStatus: BatchStatus; status: BatchStatus; batch: BatchRecord } | null> {
  const params = new SqlParams();
  const id = params.add(batchId);
  const to = params.add(toStatus);
  const keep = params.add(replaceable);
  const from = params.add(options.onlyFrom ?? null);
  const terminal = params.add(TERMINAL_BATCH_STATUSES);
  const assignments = Object.entries(set).map(([column, value]) => {
    if (value && typeof value === 'object' && 'raw' in value) return `${column} = ${(value as { raw: string }).raw}`;
    if (value && typeof value === 'object' && 'coalesce' in value) return `${column} = COALESCE(b.${column}, ${params.add((value as { coalesce: unknown }).coalesce)})`;
    return `${column} = ${params.add(value)}`;
  });
  const also = (options.also ?? []).map((part, index) => `also_${index} AS (${part(params)}),`).join('\n');
  const { rows } = await db.query(
    `WITH before AS (SELECT status FROM batches WHERE id = ${id} FOR UPDATE),
     ${also}
     changed AS (
       UPDATE batches b
          SET status = CASE WHEN before.status = ANY(${terminal}::text[]) AND before.status <> ALL(${keep}::text[])
                            THEN before.status ELSE ${to}::text END,
              updated_at = now()${assignments.length ? ', ' + assignments.join(', ') : ''}
         FROM before
        WHERE b.id = ${id} AND (${from}::text IS NULL OR before.status = ${from}::text)
        RETURNING before.status AS from_status, b.*),
     logged AS (${statusChangeEventSql(params, 'batch', batchId, eventKind, detail, 'changed')})
     SELECT * FROM changed`,
    params.values,
  );
  if (!rows[0]) {
    if (options.onlyFrom) return null;
    throw new Error(`batch ${batchId} does not exist`);
  }
  return { fromStatus: rows[0].from_status, status: rows[0].status, batch: toBatchRecord(rows[0]) };
}

/**
 * An operator discarded the batch's dead letter: it failed for good, whatever the provider said (a discard is the
 * final word, even after the provider ended the batch).
 */
export async function markDiscarded(db: Queryable, batchId: string, failure: { code: string; message: string }): Promise<void> {
  await transition(db, batchId, 'failed', 'discarded', {
    failure_code: failure.code,
    failure_message: failure.message.slice(0, 2000),
    failed_at: { raw: 'COALESCE(b.failed_at, now())' },
    ended_at: { raw: 'COALESCE(b.ended_at, now())' },
  }, {}, TERMINAL_BATCH_STATUSES.filter((status) => status !== 'failed'));
}

/** Opens the next submission round: the batch is pending again until its follow-up provider batches exist. */
export async function startNextRound(db: Queryable, batchId: string, round: { round: number; requests: number }): Promise<void> {
  await transition(db, batchId, 'pending', 'resubmitting', {
    round: round.round,
    results_fetched_at: null,
    ended_at: null,
    next_poll_at: null,
  }, { round: round.round, requests: round.requests }, TERMINAL_BATCH_STATUSES);
}

/**
 * Opens the synchronous round of the straggler fallback: the batch's round moves on (its status stays; no provider
 * batch is submitted for this round). False when the batch is no longer in `fromRound` (a retried step did it).
 */
export async function openSynchronousRound(db: Queryable, batchId: string, fromRound: number, requests: number): Promise<boolean> {
  const { rowCount } = await db.query(`UPDATE batches SET round = round + 1, updated_at = now() WHERE id = $1 AND round = $2`, [batchId, fromRound]);
  if (!rowCount) return false;
  await appendEvent(db, 'batch', batchId, 'stragglers_sent_synchronously', { detail: { round: fromRound + 1, requests } });
  return true;
}

/** Over its admission budget: the batch waits in `queued` (only from pending; false when it was not pending). */
export async function markQueued(db: Queryable, batchId: string, detail: Record<string, unknown>): Promise<boolean> {
  return (await transition(db, batchId, 'queued', 'queued', {}, detail, [], { onlyFrom: 'pending' })) !== null;
}

/** Admitted: pending again, ready to submit (only from queued). */
export async function markAdmitted(db: Queryable, batchId: string, detail: Record<string, unknown>): Promise<boolean> {
  return (await transition(db, batchId, 'pending', 'admitted', {}, detail, [], { onlyFrom: 'queued' })) !== null;
}

/**
 * The provider refused the round for a full queue (a part failed with token_limit_exceeded, or the create was
 * refused): the batch waits in `queued` again, its failure and end cleared, whatever status the refusal left.
 */
export async function markQueueLimited(db: Queryable, batchId: string, detail: Record<string, unknown>): Promise<void> {
  await transition(db, batchId, 'queued', 'queue_limited', {
    ended_at: null, next_poll_at: null, failure_code: null, failure_message: null, failed_at: null,
  }, detail, TERMINAL_BATCH_STATUSES);
}

/** Counts requests dead-lettered after their last allowed submission. */
export async function addDeadLetteredRequests(db: Queryable, batchId: string, round: number, count: number): Promise<void> {
  await db.query(`UPDATE batches SET dead_lettered_requests = dead_lettered_requests + $2 WHERE id = $1`, [batchId, count]);
  await appendEvent(db, 'batch', batchId, 'requests_dead_lettered', { detail: { round, count } });
}

/**
 * Closes the results phase (after every part's results and leftovers are stored): requests that belong to no part
 * become `leftoverStatus` (missing, expired or canceled), token usage and cost are rolled up, results_fetched_at is
 * stamped, and the final status (if given) is applied.
 */
export async function completeResults(
  db: Queryable,
  batchId: string,
  options: {
    leftoverStatus: 'missing' | 'expired' | 'canceled';
    leftoverMessage: string;
    finalStatus?: BatchStatus;
    failure?: { code: string; message: string };
    /** Terminal statuses the final status may replace. */
    replaceable?: BatchStatus[];
    /** Result lines of this round beyond one per request (added to the batch's counts over all rounds). */
    unknownIds: number;
    malformedLines: number;
    duplicateLines: number;
    /** Prices per million tokens, already discounted for batch use; null when unknown (cost stays null). */
    price?: ResolvedPrice | null;
  },
  /** Written with the last statement (the results step's success). */
  also?: StatementPart,
): Promise<ResultSummary & { status: BatchStatus }> {
  await insertUnplannedLeftovers(db, batchId, { status: options.leftoverStatus, message: options.leftoverMessage });
  if (options.price) {
    await db.query(
      `UPDATE batches SET input_price_per_mtok_usd = $2, output_price_per_mtok_usd = $3, cached_input_price_per_mtok_usd = $4,
              cache_write_price_per_mtok_usd = $5, reasoning_price_per_mtok_usd = $6
        WHERE id = $1`,
      [batchId, options.price.inputPerMTokUsd, options.price.outputPerMTokUsd, options.price.cachedInputPerMTokUsd,
        options.price.cacheWritePerMTokUsd, options.price.reasoningPerMTokUsd],
    );
  }
  const totals = await outcomeTotals(db, batchId);
  const { rows: rolledUp } = await db.query(
    `UPDATE batches b SET input_tokens = $2, output_tokens = $3, cost_usd = $4::numeric,
            cached_input_tokens = $8, cache_write_tokens = $9, reasoning_tokens = $10,
            unknown_ids = b.unknown_ids + $5, malformed_lines = b.malformed_lines + $6, duplicate_lines = b.duplicate_lines + $7,
            results_fetched_at = COALESCE(b.results_fetched_at, now()), updated_at = now()
      WHERE b.id = $1
      RETURNING cost_usd, dead_lettered_requests, status, ${ANOMALY_COLUMNS}`,
    [batchId, totals.inputTokens, totals.outputTokens, totals.costUsd, options.unknownIds, options.malformedLines, options.duplicateLines,
      totals.cachedInputTokens, totals.cacheWriteTokens, totals.reasoningTokens],
  );
  let status: BatchStatus = rolledUp[0].status;
  if (options.finalStatus) {
    const set: Record<string, unknown> = { ended_at: { raw: 'COALESCE(b.ended_at, now())' } };
    if (options.failure) {
      set.failure_code = options.failure.code;
      set.failure_message = options.failure.message;
      set.failed_at = { raw: 'COALESCE(b.failed_at, now())' };
    }
    status = (await transition(db, batchId, options.finalStatus, 'finalized', set, options.failure ?? {}, options.replaceable))!.status;
  }
  const summary = toResultSummary(totals, rolledUp[0]);
  summary.costUsd = rolledUp[0].cost_usd === null ? null : Number(rolledUp[0].cost_usd);
  summary.deadLetteredRequests = rolledUp[0].dead_lettered_requests;
  await appendEvent(db, 'batch', batchId, 'results_stored', { detail: { ...summary } }, also);
  return { ...summary, status };
}

/** The outcome counts of the requests' current rounds, with the result anomalies counted over all rounds. */
export async function summarizeRequests(db: Queryable, batchId: string): Promise<ResultSummary> {
  const { rows } = await db.query(`SELECT ${ANOMALY_COLUMNS} FROM batches WHERE id = $1`, [batchId]);
  if (!rows[0]) throw new Error(`batch ${batchId} does not exist`);
  return toResultSummary(await outcomeTotals(db, batchId), rows[0]);
}

const ANOMALY_COLUMNS = 'unknown_ids, malformed_lines, duplicate_lines';

function toResultSummary(totals: OutcomeTotals, anomalies: Record<string, any>): ResultSummary {
  const summary: ResultSummary = {
    succeeded: 0, errored: 0, expired: 0, canceled: 0, missing: 0,
    unknownIds: anomalies.unknown_ids, malformedLines: anomalies.malformed_lines, duplicateLines: anomalies.duplicate_lines,
  };
  for (const status of ['succeeded', 'errored', 'expired', 'canceled', 'missing'] as const) summary[status] = totals.counts[status] ?? 0;
  return summary;
}

/** Stamps the handler's dispatch and logs it, in one statement with `also` (e.g. the step's success). */
export async function markHandlerDispatched(
  db: Queryable, batchId: string, outcome: string, also: StatementPart = () => 'SELECT 1',
): Promise<void> {
  const params = new SqlParams();
  await db.query(
    `WITH dispatched AS (UPDATE batches SET handler_dispatched_at = now(), updated_at = now() WHERE id = ${params.add(batchId)}),
          also_0 AS (${also(params)})
     ${eventSql(params, 'batch', batchId, 'handler_dispatched', { detail: { outcome } })}`,
    params.values,
  );
}

export async function setDeadline(db: Queryable, batchId: string, deadlineAt: Date): Promise<void> {
  await db.query(`UPDATE batches SET deadline_at = $2, updated_at = now() WHERE id = $1`, [batchId, deadlineAt]);
  await appendEvent(db, 'batch', batchId, 'deadline_extended', { detail: { deadlineAt: deadlineAt.toISOString() } });
}

/** Batches whose handler has not run yet, oldest first: what the sweep checks. */
export async function listUndispatchedBatchIds(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query(`SELECT id FROM batches WHERE handler_dispatched_at IS NULL ORDER BY created_at LIMIT $1`, [limit]);
  return rows.map((row) => row.id);
}

/** How many batches each provider has in each status (what the worker's metrics gauge shows). */
export async function countBatchesByProviderAndStatus(db: Queryable): Promise<{ provider: string; status: BatchStatus; count: number }[]> {
  const { rows } = await db.query(`SELECT provider, status, count(*)::int AS n FROM batches GROUP BY provider, status`);
  return rows.map((row) => ({ provider: row.provider, status: row.status, count: row.n }));
}

/**
 * Retention: drops the request bodies (params become `{}`) and result bodies (result becomes NULL) of up to `limit`
 * batches whose handler ran more than `days` days ago, keeping every row, status, error, try count, token count, cost
 * and event; stamps bodies_purged_at and logs a bodies_purged event per batch. Returns the batches purged.
 */
export async function purgeBodiesOlderThan(db: Queryable, days: number, limit: number): Promise<number> {
  const { rows } = await db.query(
    `WITH old AS (
       SELECT id FROM batches
        WHERE bodies_purged_at IS NULL AND handler_dispatched_at IS NOT NULL
          AND handler_dispatched_at < now() - make_interval(days => $1::int)
        ORDER BY handler_dispatched_at LIMIT $2 FOR UPDATE SKIP LOCKED),
     requests AS (UPDATE batch_requests SET params = '{}'::jsonb WHERE batch_id IN (SELECT id FROM old) RETURNING batch_id),
     results AS (UPDATE request_results SET result = NULL WHERE batch_id IN (SELECT id FROM old) AND result IS NOT NULL RETURNING batch_id),
     stamped AS (UPDATE batches SET bodies_purged_at = now() WHERE id IN (SELECT id FROM old) RETURNING id),
     logged AS (
       INSERT INTO event_log (subject_kind, subject_id, kind, detail)
       SELECT 'batch', s.id, 'bodies_purged', jsonb_build_object('retentionDays', $1::int,
              'requests', (SELECT count(*) FROM requests r WHERE r.batch_id = s.id),
              'results', (SELECT count(*) FROM results o WHERE o.batch_id = s.id))
         FROM stamped s RETURNING subject_id)
     SELECT count(*)::int AS n FROM logged`,
    [days, limit],
  );
  return rows[0].n;
}

import type { PoolClient } from 'pg';
import { CopyWriter, copyText } from './copy-writer';
import type { RequestStatus } from '../domain/types';
import type { Queryable } from './queryable';

/**
 * SQL for request_results: one insert-only row per request per round, written once (COPY for result files, one
 * INSERT for leftovers). The request_outcomes view joins each request to the outcome of its current round.
 */

/** One request's outcome as stored. */
export interface OutcomeRow {
  status: Exclude<RequestStatus, 'pending'>;
  /** The result as JSON text, already checked to be storable (domain/storable-text.ts jsonForStorage). */
  resultJson?: string;
  errorCode?: string;
  errorMessage?: string;
  retryable?: boolean;
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
}

/** A result line ready to store, joined to its request by the provider-side id. */
export interface StoredOutcome extends OutcomeRow {
  customId: string;
  status: Exclude<RequestStatus, 'pending' | 'missing'>;
}

const COPY_COLUMNS = 'batch_id, round, position, status, result, error_code, error_message, retryable, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens';

/**
 * Streams outcomes into request_results with COPY on a client inside the caller's transaction (so a part's results
 * land all at once or not at all).
 */
export class ResultsCopy {
  private readonly copy: CopyWriter;

  constructor(client: PoolClient, private readonly batchId: string, private readonly round: number) {
    this.copy = new CopyWriter(client, `COPY request_results (${COPY_COLUMNS}) FROM STDIN`);
  }

  /** Queues one row; await the promise when one is returned (PostgreSQL is behind). */
  write(position: number, outcome: OutcomeRow): Promise<void> | undefined {
    // Only the free-text fields can hold characters COPY treats specially; ids, numbers and the status cannot.
    return this.copy.write(`${this.batchId}\t${this.round}\t${position}\t${outcome.status}\t${
      copyText(outcome.resultJson ?? null)}\t${
      copyText(outcome.errorCode ?? null)}\t${copyText(outcome.errorMessage ?? null)}\t${
      outcome.retryable === undefined ? '\\N' : String(outcome.retryable)}\t${
      integerOrNull(outcome.inputTokens)}\t${integerOrNull(outcome.outputTokens)}\t${
      integerOrNull(outcome.cachedInputTokens)}\t${integerOrNull(outcome.cacheWriteTokens)}\t${integerOrNull(outcome.reasoningTokens)}`);
  }

  end(): Promise<void> {
    return this.copy.end();
  }

  /** Cancels the COPY so the connection can take the ROLLBACK (a cut download). */
  abort(reason: Error): Promise<void> {
    return this.copy.abort(reason);
  }
}

function integerOrNull(value: number | undefined): string {
  return typeof value === 'number' && Number.isInteger(value) ? String(value) : '\\N';
}

/**
 * Requests of the batch's current round that belong to no part (never planned, so no results step wrote their
 * outcome): one outcome each (missing, expired or canceled). Requests of a part get theirs with the part's results.
 */
export async function insertUnplannedLeftovers(
  db: Queryable,
  batchId: string,
  leftover: { status: 'missing' | 'expired' | 'canceled'; message: string },
): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO request_results (batch_id, round, position, status, error_code, error_message, retryable)
     SELECT r.batch_id, r.round, r.position, $2, $2, $3, true
       FROM batch_requests r JOIN batches b ON b.id = r.batch_id AND b.round = r.round
      WHERE r.batch_id = $1 AND r.part IS NULL
     ON CONFLICT DO NOTHING`,
    [batchId, leftover.status, leftover.message],
  );
  return rowCount ?? 0;
}

export interface OutcomeTotals {
  counts: Partial<Record<RequestStatus, number>>;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  reasoningTokens: number;
  /** numeric as text (exact); null when the batch is unpriced. */
  costUsd: string | null;
}

/**
 * Counts by status, token sums and cost over each request's current outcome, in one pass (the rows are wide: each
 * extra pass over a large batch reads its results again).
 */
export async function outcomeTotals(db: Queryable, batchId: string): Promise<OutcomeTotals> {
  const { rows } = await db.query(
    `SELECT CASE WHEN GROUPING(status) = 1 THEN NULL ELSE status END AS status, count(*)::int AS n,
            COALESCE(sum(input_tokens), 0)::bigint AS input_tokens, COALESCE(sum(output_tokens), 0)::bigint AS output_tokens,
            COALESCE(sum(cached_input_tokens), 0)::bigint AS cached_input_tokens,
            COALESCE(sum(cache_write_tokens), 0)::bigint AS cache_write_tokens,
            COALESCE(sum(reasoning_tokens), 0)::bigint AS reasoning_tokens,
            sum(cost_usd)::text AS cost_usd
       FROM request_outcomes WHERE batch_id = $1
      GROUP BY GROUPING SETS ((status), ())`,
    [batchId],
  );
  const totals: OutcomeTotals = {
    counts: {}, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, costUsd: null,
  };
  for (const row of rows) {
    if (row.status !== null) {
      totals.counts[row.status as RequestStatus] = row.n;
    } else {
      totals.inputTokens = Number(row.input_tokens);
      totals.outputTokens = Number(row.output_tokens);
      totals.cachedInputTokens = Number(row.cached_input_tokens);
      totals.cacheWriteTokens = Number(row.cache_write_tokens);
      totals.reasoningTokens = Number(row.reasoning_tokens);
      totals.costUsd = row.cost_usd;
    }
  }
  return totals;
}

/**
 * One outcome of the straggler fallback, answered by the provider's synchronous API: marked synchronous, with its
 * cost at the full rate (null when unpriced). Ignored when the request has its outcome for the round already (a
 * retried step).
 */
export async function insertSynchronousOutcome(
  db: Queryable, batchId: string, round: number, position: number, outcome: OutcomeRow, costUsd: string | null,
): Promise<void> {
  await db.query(
    `INSERT INTO request_results (batch_id, round, position, status, result, error_code, error_message, retryable, input_tokens,
                                  output_tokens, synchronous, cost_usd)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, true, $11::numeric)
     ON CONFLICT DO NOTHING`,
    [batchId, round, position, outcome.status, outcome.resultJson ?? null, outcome.errorCode ?? null, outcome.errorMessage ?? null,
      outcome.retryable ?? null, outcome.inputTokens ?? null, outcome.outputTokens ?? null, costUsd],
  );
}

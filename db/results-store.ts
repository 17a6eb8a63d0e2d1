import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
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
}

/** A result line ready to store, joined to its request by the provider-side id. */
export interface StoredOutcome extends OutcomeRow {
  customId: string;
  status: Exclude<RequestStatus, 'pending' | 'missing'>;
}

const COPY_BLOCK_CHARS = 64 * 1024;
const COPY_COLUMNS = 'batch_id, round, position, status, result, error_code, error_message, retryable, input_tokens, output_tokens';

/**
 * Streams outcomes into request_results with COPY on a client inside the caller's transaction (so a part's results
 * land all at once or not at all). `write` waits when PostgreSQL is behind, so memory stays flat.
 */
export class ResultsCopy {
  private readonly stream: ReturnType<typeof copyFrom>;
  private failure: Error | null = null;
  private buffered = '';
  private readonly done: Promise<void>;

  constructor(client: PoolClient, private readonly batchId: string, private readonly round: number) {
    const stream = client.query(copyFrom(`COPY request_results (${COPY_COLUMNS}) FROM STDIN`));
    this.stream = stream;
    this.done = new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', (error: Error) => {
        this.failure = error;
        reject(error);
      });
    });
    this.done.catch(() => undefined);
  }

  /**
   * Queues one row. Returns a promise only when a block went out and PostgreSQL is behind: await it then (a promise
   * per row would cost more than the row).
   */
  write(position: number, outcome: OutcomeRow): Promise<void> | undefined {
    if (this.failure) throw this.failure;
    // Only the free-text fields can hold characters COPY treats specially; ids, numbers and the status cannot.
    const line = `${this.batchId}\t${this.round}\t${position}\t${outcome.status}\t${
      copyText(outcome.resultJson ?? null)}\t${
      copyText(outcome.errorCode ?? null)}\t${copyText(outcome.errorMessage ?? null)}\t${
      outcome.retryable === undefined ? '\\N' : String(outcome.retryable)}\t${
      integerOrNull(outcome.inputTokens)}\t${integerOrNull(outcome.outputTokens)}`;
    // Lines go out in blocks: one CopyData message per line costs both ends more than the rows themselves.
    this.buffered += `${line}\n`;
    return this.buffered.length >= COPY_BLOCK_CHARS ? this.flush() : undefined;
  }

  async end(): Promise<void> {
    await this.flush();
    this.stream.end();
    await this.done;
  }

  private async flush(): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.buffered) return;
    const block = this.buffered;
    this.buffered = '';
    if (!this.stream.write(block)) {
      await Promise.race([once(this.stream, 'drain'), this.done]);
      if (this.failure) throw this.failure;
    }
  }

  /**
   * Cancels the COPY (PostgreSQL discards its rows) and waits until the connection can take the ROLLBACK; call it
   * when the lines fail mid-way (a cut download), or the client would stay in COPY mode.
   */
  async abort(reason: Error): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy(reason);
    await finished(this.stream).catch(() => undefined);
  }
}

/** COPY text format: \N is null; backslash, tab, newline and carriage return are escaped (one pass). */
function copyText(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(COPY_SPECIAL_ALL, (char) => COPY_ESCAPES[char]!) : value;
}

const COPY_SPECIAL = /[\\\t\n\r]/;
const COPY_SPECIAL_ALL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

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
            sum(cost_usd)::text AS cost_usd
       FROM request_outcomes WHERE batch_id = $1
      GROUP BY GROUPING SETS ((status), ())`,
    [batchId],
  );
  const totals: OutcomeTotals = { counts: {}, inputTokens: 0, outputTokens: 0, costUsd: null };
  for (const row of rows) {
    if (row.status !== null) {
      totals.counts[row.status as RequestStatus] = row.n;
    } else {
      totals.inputTokens = Number(row.input_tokens);
      totals.outputTokens = Number(row.output_tokens);
      totals.costUsd = row.cost_usd;
    }
  }
  return totals;
}

import { RESENDABLE_REQUEST_STATUSES, type RequestStatus } from '../domain/statuses';
import type { ClientBase } from 'pg';
import { CopyWriter, copyText } from './copy-writer';
import { queryUnprepared, type Queryable } from './queryable';
import { checkedSchema } from './schema';
import type { SqlParams } from './sql-params';

/**
 * SQL for batch_requests: one row per request of a logical batch (its body, its provider-side id, the round and part
 * it is in, its try count), read with its current outcome through the request_outcomes view.
 */

export interface NewRequest {
  customId: string;
  params: Record<string, unknown>;
  /** `params` as JSON text when the caller serialised it already (submitBatch's validation does), so it is done once. */
  paramsJson?: string;
}

export interface RequestRecord {
  customId: string;
  position: number;
  status: RequestStatus;
  result: unknown;
  errorCode: string | null;
  errorMessage: string | null;
  retryable: boolean | null;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Times the request was sent to the provider (its try count). */
  attempts: number;
  deadLettered: boolean;
  costUsd: number | null;
  /** Answered by the provider's synchronous API (the straggler fallback), priced at the full rate. */
  synchronous: boolean;
}

/**
 * Inserts the requests of a new batch in submission order, with COPY (a 50,000-request batch of 4 KB requests is
 * 200 MB of jsonb: an INSERT per chunk of 1,000 took three times as long). Call on the client of the transaction that
 * inserts the batch: the rows land with it or not at all.
 */
export async function insertRequests(db: ClientBase, batchId: string, requests: readonly NewRequest[]): Promise<void> {
  const copy = new CopyWriter(db, 'COPY batch_requests (batch_id, custom_id, position, params) FROM STDIN');
  try {
    for (let position = 0; position < requests.length; position += 1) {
      const { customId, params, paramsJson } = requests[position];
      const behind = copy.write(`${batchId}\t${copyText(customId)}\t${position}\t${copyText(paramsJson ?? JSON.stringify(params))}`);
      if (behind) await behind;
    }
    await copy.end();
  } catch (error) {
    await copy.abort(error as Error);
    throw error;
  }
}

/** Streams one part's requests in submission order, page by page, with their provider-side ids, for the upload. */
export async function* iterateRequestBodies(
  db: Queryable,
  batchId: string,
  part: { round: number; part: number },
  pageSize = 1000,
): AsyncGenerator<NewRequest> {
  let after = -1;
  for (;;) {
    const { rows } = await queryUnprepared(
      db,
      `SELECT provider_custom_id, position, params::text AS params_json FROM batch_requests
        WHERE batch_id = $1 AND round = $2 AND part = $3 AND position > $4
        ORDER BY position LIMIT $5`,
      [batchId, part.round, part.part, after, pageSize],
    );
    // Parsed only if the adapter reads `params`: the JSONL adapters splice the text as it is.
    for (const row of rows) yield lazyParams(row.provider_custom_id, row.params_json);
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1].position;
  }
}

function lazyParams(customId: string, paramsJson: string): NewRequest & { paramsJson: string } {
  let parsed: Record<string, unknown> | undefined;
  return {
    customId,
    paramsJson,
    get params() {
      parsed ??= JSON.parse(paramsJson) as Record<string, unknown>;
      return parsed;
    },
  };
}

/**
 * One page of a batch's requests with their outcomes, in position order. `schema` names batchkeeper's schema for a
 * connection whose search path is another (a completion handler's transaction, which pages results on the same
 * connection it writes through).
 */
export async function listRequests(
  db: Queryable,
  batchId: string,
  page: { afterPosition?: number; limit: number; status?: RequestStatus; schema?: string },
): Promise<RequestRecord[]> {
  const view = page.schema ? `"${checkedSchema(page.schema)}".request_outcomes` : 'request_outcomes';
  const { rows } = await queryUnprepared(
    db,
    `SELECT custom_id, position, status, result, error_code, error_message, retryable, input_tokens, output_tokens,
            attempts, dead_lettered_at, cost_usd, synchronous
       FROM ${view}
      WHERE batch_id = $1 AND position > $2 AND ($4::text IS NULL OR status = $4)
      ORDER BY position LIMIT $3`,
    [batchId, page.afterPosition ?? -1, page.limit, page.status ?? null],
  );
  return rows.map((row) => ({
    customId: row.custom_id,
    position: row.position,
    status: row.status,
    result: row.result,
    errorCode: row.error_code,
    errorMessage: row.error_message,
    retryable: row.retryable,
    inputTokens: row.input_tokens,
    outputTokens: row.output_tokens,
    attempts: row.attempts,
    deadLettered: row.dead_lettered_at !== null,
    costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
    synchronous: row.synchronous === true,
  }));
}

/** The requests of a round still to be placed in parts, with the bytes each adds to an upload. */
export async function roundRequestSizes(db: Queryable, batchId: string, round: number): Promise<{ position: number; customId: string; bytes: number }[]> {
  const { rows } = await db.query(
    `SELECT position, custom_id, octet_length(params::text) + octet_length(custom_id) + 64 AS bytes
       FROM batch_requests WHERE batch_id = $1 AND round = $2 ORDER BY position`,
    [batchId, round],
  );
  return rows.map((row) => ({ position: row.position, customId: row.custom_id, bytes: row.bytes }));
}

const ASSIGN_CHUNK = 5000;

/** Places requests in parts and gives each its provider-side id. */
export async function assignRequestsToParts(
  db: Queryable, batchId: string, assignments: readonly { position: number; part: number; providerId: string }[],
): Promise<void> {
  for (let offset = 0; offset < assignments.length; offset += ASSIGN_CHUNK) {
    const chunk = assignments.slice(offset, offset + ASSIGN_CHUNK);
    await db.query(
      `UPDATE batch_requests r SET part = u.part, provider_custom_id = u.provider_id
         FROM unnest($2::int[], $3::int[], $4::text[]) AS u(position, part, provider_id)
        WHERE r.batch_id = $1 AND r.position = u.position`,
      [batchId, chunk.map((a) => a.position), chunk.map((a) => a.part), chunk.map((a) => a.providerId)],
    );
  }
}

/**
 * The body of a CTE that counts one submission of every request of a part (its try count), written in the statement
 * that stores the part's provider id so the count happens exactly once; `stored` names the CTE of that write.
 */
export function countPartSubmissionSql(params: SqlParams, part: { batchId: string; round: number; part: number }, stored: string): string {
  return `UPDATE batch_requests SET attempts = attempts + 1
           WHERE batch_id = ${params.add(part.batchId)}::uuid AND round = ${params.add(part.round)}::integer
             AND part = ${params.add(part.part)}::integer AND EXISTS (SELECT 1 FROM ${stored})`;
}

/** Takes back one submission of the requests of these parts: the provider refused them for a full queue. */
export async function uncountPartSubmissions(db: Queryable, batchId: string, round: number, parts: readonly number[]): Promise<void> {
  await db.query(
    `UPDATE batch_requests SET attempts = attempts - 1 WHERE batch_id = $1 AND round = $2 AND part = ANY($3::int[]) AND attempts > 0`,
    [batchId, round, parts],
  );
}

/**
 * One page of the round's request bodies as JSON text, in position order (the admission's token estimate reads
 * them page by page).
 */
export async function roundParamsPage(
  db: Queryable, batchId: string, round: number, afterPosition: number, limit: number,
): Promise<{ position: number; paramsJson: string }[]> {
  const { rows } = await queryUnprepared(
    db,
    `SELECT position, params::text AS params_json FROM batch_requests
      WHERE batch_id = $1 AND round = $2 AND position > $3 ORDER BY position LIMIT $4`,
    [batchId, round, afterPosition, limit],
  );
  return rows.map((row) => ({ position: row.position, paramsJson: row.params_json }));
}

/** Provider-side id → position of every request of one part, to join result lines back to their requests. */
export async function partPositions(db: Queryable, part: { batchId: string; round: number; part: number }): Promise<Map<string, number>> {
  const { rows } = await db.query(
    'SELECT provider_custom_id, position FROM batch_requests WHERE batch_id = $1 AND round = $2 AND part = $3',
    [part.batchId, part.round, part.part],
  );
  return new Map(rows.map((row) => [row.provider_custom_id as string, row.position as number]));
}

/** Positions of the round's outcomes a follow-up round would resend (or dead-letter): $1 batch, $2 round, $4 statuses. */
const RESENDABLE_POSITIONS = `ARRAY(SELECT o.position FROM request_results o
  WHERE o.batch_id = $1 AND o.round = $2 AND (o.status = ANY($4::text[]) OR (o.status = 'errored' AND o.retryable IS TRUE)))`;

/**
 * Whether the batch's current round has an outcome a follow-up round would act on: one read, so the usual batch
 * (nothing to resend) skips the resubmission transaction. Null when the batch does not exist.
 */
export async function hasResendableOutcomes(db: Queryable, batchId: string): Promise<{ round: number; resendable: boolean } | null> {
  const { rows } = await db.query(
    `SELECT b.round, EXISTS (SELECT 1 FROM request_results o WHERE o.batch_id = b.id AND o.round = b.round
                                AND (o.status = ANY($2::text[]) OR (o.status = 'errored' AND o.retryable IS TRUE))) AS resendable
       FROM batches b WHERE b.id = $1`,
    [batchId, RESENDABLE_REQUEST_STATUSES],
  );
  return rows[0] ? { round: rows[0].round, resendable: rows[0].resendable } : null;
}

/**
 * Of the round's resendable requests, flags those sent `maxAttempts` times as dead-lettered and moves the others to
 * the next round (pending again: the new round has no outcome yet). Permanent errors are never resent. The positions
 * are collected first (one pass over the round's results) and the requests found through their index: a join here is
 * planned on the statistics of a batch inserted moments ago and can degrade to a nested loop (120,000 requests:
 * minutes). Call in a transaction.
 */
export async function resendOrDeadLetterRequests(
  db: Queryable, batchId: string, round: number, maxAttempts: number,
): Promise<{ resent: number; deadLettered: number }> {
  const resendable = `batch_id = $1 AND round = $2 AND dead_lettered_at IS NULL AND position = ANY (${RESENDABLE_POSITIONS})`;
  const { rowCount: deadLettered } = await db.query(
    `UPDATE batch_requests SET dead_lettered_at = now() WHERE ${resendable} AND attempts >= $3`,
    [batchId, round, maxAttempts, RESENDABLE_REQUEST_STATUSES],
  );
  const { rowCount: resent } = await db.query(
    `UPDATE batch_requests SET round = round + 1, part = NULL, provider_custom_id = NULL WHERE ${resendable} AND attempts < $3`,
    [batchId, round, maxAttempts, RESENDABLE_REQUEST_STATUSES],
  );
  return { resent: resent ?? 0, deadLettered: deadLettered ?? 0 };
}

/** Outcomes of a round that mean the provider never answered the request (the straggler fallback sends these). */
export const UNANSWERED_STATUSES: readonly RequestStatus[] = ['missing', 'expired', 'canceled'];

/**
 * Moves the round's requests the provider never answered (missing, expired or canceled; not dead-lettered) to the
 * next round, counted as one more attempt each: the synchronous round of the straggler fallback. Returns how many.
 * Call in a transaction, with openSynchronousRound.
 */
export async function moveUnansweredToNextRound(db: Queryable, batchId: string, round: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE batch_requests SET round = round + 1, part = NULL, provider_custom_id = NULL, attempts = attempts + 1
      WHERE batch_id = $1 AND round = $2 AND dead_lettered_at IS NULL
        AND position = ANY (ARRAY(SELECT o.position FROM request_results o WHERE o.batch_id = $1 AND o.round = $2 AND o.status = ANY($3::text[])))`,
    [batchId, round, UNANSWERED_STATUSES],
  );
  return rowCount ?? 0;
}

/** Requests of the round without an outcome yet, with their bodies, in position order (at most `limit`). */
export async function listUnansweredRequests(
  db: Queryable, batchId: string, round: number, limit: number,
): Promise<{ position: number; customId: string; params: Record<string, unknown> }[]> {
  const { rows } = await queryUnprepared(db,
    `SELECT r.position, r.custom_id, r.params FROM batch_requests r
      WHERE r.batch_id = $1 AND r.round = $2
        AND NOT EXISTS (SELECT 1 FROM request_results o WHERE o.batch_id = r.batch_id AND o.round = r.round AND o.position = r.position)
      ORDER BY r.position LIMIT $3`,
    [batchId, round, limit],
  );
  return rows.map((row) => ({ position: row.position, customId: row.custom_id, params: row.params }));
}

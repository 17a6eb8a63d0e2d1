import { providerCustomId, type ProviderLimits } from '../domain/provider-limits';
import { isTerminalBatchStatus, TERMINAL_BATCH_STATUSES, type BatchStatus } from '../domain/statuses';
import type { RequestCounts } from '../domain/types';
import type { Queryable } from './queryable';
import { assignRequestsToParts, countPartSubmissionSql, roundRequestSizes, uncountPartSubmissions } from './requests-store';
import { SqlParams } from './sql-params';

/** SQL for provider_batches: the parts (by provider limits) and rounds (resubmissions) of a logical batch. */

export interface ProviderBatchRecord {
  batchId: string;
  round: number;
  part: number;
  tag: string;
  requestCount: number;
  providerBatchId: string | null;
  status: BatchStatus;
  providerStatus: string | null;
  requestCounts: Partial<RequestCounts>;
  resultsAvailable: boolean;
  failureCode: string | null;
  failureMessage: string | null;
  resultsFetchedAt: Date | null;
  /** The input file uploaded for the part (when the provider takes one). */
  inputFileId: string | null;
  /** When the part's files were deleted at the provider (null: not yet, or never to be). */
  filesDeletedAt: Date | null;
  /** The result files its last status read named (null: none read yet, or a provider without files). */
  resultFileIds: string[] | null;
}

/** A part row as stored, or as json_agg renders it inside another query (timestamps then come back as text). */
export function toRecord(row: Record<string, any>): ProviderBatchRecord {
  return {
    batchId: row.batch_id,
    round: row.round,
    part: row.part,
    tag: row.tag,
    requestCount: row.request_count,
    providerBatchId: row.provider_batch_id,
    status: row.status,
    providerStatus: row.provider_status,
    requestCounts: row.request_counts,
    resultsAvailable: row.results_available,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
    resultsFetchedAt: toDate(row.results_fetched_at),
    inputFileId: row.input_file_id ?? null,
    filesDeletedAt: toDate(row.files_deleted_at),
    resultFileIds: row.result_file_ids ?? null,
  };
}

function toDate(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value : new Date(value as string);
}

/** Metadata tag of a part: the batch id itself for the first part of the first round, so one-part batches read simply. */
export function partTag(batchId: string, round: number, part: number): string {
  return round === 1 && part === 0 ? batchId : `${batchId}.r${round}p${part}`;
}

export async function listParts(db: Queryable, batchId: string, round: number): Promise<ProviderBatchRecord[]> {
  const { rows } = await db.query(
    `SELECT * FROM provider_batches WHERE batch_id = $1 AND round = $2 ORDER BY part`, [batchId, round],
  );
  return rows.map(toRecord);
}

/**
 * Splits the round's requests (all still pending: a round has no outcomes before its parts exist) into parts that
 * fit the provider's limits (greedy, in submission order) and gives each request its provider-side id. Does nothing
 * when the round already has parts. Call in a transaction.
 */
export async function planParts(db: Queryable, batchId: string, round: number, limits: ProviderLimits): Promise<ProviderBatchRecord[]> {
  const existing = await listParts(db, batchId, round);
  if (existing.length > 0) return existing;
  const requests = await roundRequestSizes(db, batchId, round);
  if (requests.length === 0) throw new Error(`batch ${batchId} has no pending requests for round ${round}`);
  const assignments: { position: number; part: number; providerId: string }[] = [];
  const sizes: number[] = [];
  let part = 0;
  let count = 0;
  let bytes = 0;
  for (const request of requests) {
    if (count > 0 && (count + 1 > limits.maxRequests || bytes + request.bytes > limits.maxBytes)) {
      sizes.push(count);
      part += 1;
      count = 0;
      bytes = 0;
    }
    count += 1;
    bytes += request.bytes;
    assignments.push({ position: request.position, part, providerId: providerCustomId(request.customId, request.position, limits) });
  }
  sizes.push(count);
  await assignRequestsToParts(db, batchId, assignments);
  const { rows: inserted } = await db.query(
    `INSERT INTO provider_batches (batch_id, round, part, tag, request_count)
     SELECT $1, $2, part, tag, request_count FROM unnest($3::int[], $4::text[], $5::int[]) AS p(part, tag, request_count)
     RETURNING *`,
    [batchId, round, sizes.map((_, index) => index), sizes.map((_, index) => partTag(batchId, round, index)), sizes],
  );
  return inserted.map(toRecord).sort((a, b) => a.part - b.part);
}

/**
 * Stores a part's provider id the moment it is known and counts the submission as one attempt of each of its
 * requests, in one statement. Returns the part as stored, or null when it already had its id (a retried activity),
 * so nothing is counted twice.
 */
export async function recordPartSubmitted(
  db: Queryable,
  part: { batchId: string; round: number; part: number },
  submitted: { providerBatchId: string; status: BatchStatus; providerStatus: string; counts: RequestCounts; inputFileId?: string | null },
): Promise<ProviderBatchRecord | null> {
  const params = new SqlParams();
  const { rows } = await db.query(
    `WITH submitted AS (
       UPDATE provider_batches
          SET provider_batch_id = ${params.add(submitted.providerBatchId)}, status = ${params.add(submitted.status)},
              provider_status = ${params.add(submitted.providerStatus)}, request_counts = ${params.add(submitted.counts)}, submitted_at = now(),
              input_file_id = ${params.add(submitted.inputFileId ?? null)}
        WHERE batch_id = ${params.add(part.batchId)} AND round = ${params.add(part.round)} AND part = ${params.add(part.part)}
          AND provider_batch_id IS NULL
        RETURNING *),
     counted AS (${countPartSubmissionSql(params, part, 'submitted')})
     SELECT * FROM submitted`,
    params.values,
  );
  return rows[0] ? toRecord(rows[0]) : null;
}

/** One status read (or cancel reply) of one part. */
export interface PartReport {
  part: number;
  status: BatchStatus;
  providerStatus: string;
  counts: RequestCounts;
  resultsAvailable: boolean;
  failure?: { code: string; message: string };
  resultFileIds?: string[];
}

/**
 * A part after `report`, as partReportsSql stores it: a terminal status is kept (a stale read cannot reopen a
 * part), a failure is kept once known, everything else is replaced.
 */
export function applyPartReport(part: ProviderBatchRecord, report: PartReport): ProviderBatchRecord {
  return {
    ...part,
    status: isTerminalBatchStatus(part.status) ? part.status : report.status,
    providerStatus: report.providerStatus,
    requestCounts: report.counts,
    resultsAvailable: report.resultsAvailable,
    failureCode: report.failure?.code ?? part.failureCode,
    failureMessage: report.failure?.message ?? part.failureMessage,
    resultFileIds: report.resultFileIds ?? part.resultFileIds,
  };
}

/** The body of a CTE that stores status reads of some parts of one round (the rule of applyPartReport). */
export function partReportsSql(params: SqlParams, batchId: string, round: number, reports: PartReport[]): string {
  const rows = reports.map((report) => ({
    part: report.part, status: report.status, provider_status: report.providerStatus, request_counts: report.counts,
    results_available: report.resultsAvailable, failure_code: report.failure?.code ?? null, failure_message: report.failure?.message ?? null,
    result_file_ids: report.resultFileIds ?? null,
  }));
  const terminal = params.add(TERMINAL_BATCH_STATUSES);
  return `UPDATE provider_batches p
             SET status = CASE WHEN p.status = ANY(${terminal}::text[]) THEN p.status ELSE r.status END,
                 provider_status = r.provider_status, request_counts = r.request_counts, results_available = r.results_available,
                 failure_code = COALESCE(r.failure_code, p.failure_code), failure_message = COALESCE(r.failure_message, p.failure_message),
                 result_file_ids = COALESCE(r.result_file_ids, p.result_file_ids),
                 ended_at = CASE WHEN r.status = ANY(${terminal}::text[]) THEN COALESCE(p.ended_at, now()) ELSE p.ended_at END
            FROM jsonb_to_recordset(${params.add(JSON.stringify(rows))}::jsonb)
                 AS r(part integer, status text, provider_status text, request_counts jsonb, results_available boolean,
                      failure_code text, failure_message text, result_file_ids text[])
           WHERE p.batch_id = ${params.add(batchId)}::uuid AND p.round = ${params.add(round)}::integer AND p.part = r.part`;
}

/** A subquery for a batches row `b`: its current round's parts as a JSON array (read with toRecord). */
export const CURRENT_PARTS_JSON = `(SELECT COALESCE(json_agg(p ORDER BY p.part), '[]'::json) FROM provider_batches p
                                     WHERE p.batch_id = b.id AND p.round = b.round)`;

export async function markPartResultsFetched(db: Queryable, part: { batchId: string; round: number; part: number }): Promise<void> {
  await db.query(
    `UPDATE provider_batches SET results_fetched_at = COALESCE(results_fetched_at, now())
      WHERE batch_id = $1 AND round = $2 AND part = $3`,
    [part.batchId, part.round, part.part],
  );
}

/**
 * The batch a provider batch id belongs to (any round or part), among batches of the given providers; null when no
 * batch of ours has it (a webhook about someone else's batch).
 */
export async function findBatchOfProviderBatch(
  db: Queryable, providerBatchId: string, providers: readonly string[],
): Promise<{ batchId: string; status: BatchStatus } | null> {
  const { rows } = await db.query(
    `SELECT b.id, b.status FROM provider_batches p JOIN batches b ON b.id = p.batch_id
      WHERE p.provider_batch_id = $1 AND b.provider = ANY($2::text[])
      ORDER BY p.round DESC LIMIT 1`,
    [providerBatchId, [...providers]],
  );
  return rows[0] ? { batchId: rows[0].id, status: rows[0].status } : null;
}

/** One status and one set of counts for the logical batch, from its parts. */
export function aggregateParts(parts: Pick<ProviderBatchRecord, 'status' | 'requestCounts' | 'failureCode' | 'failureMessage' | 'providerStatus'>[]): {
  status: BatchStatus; counts: RequestCounts; providerStatus: string; failure?: { code: string; message: string };
} {
  const counts: RequestCounts = { total: 0, processing: 0, succeeded: 0, errored: 0, expired: 0, canceled: 0 };
  for (const part of parts) {
    for (const key of Object.keys(counts) as (keyof RequestCounts)[]) counts[key] += part.requestCounts[key] ?? 0;
  }
  const statuses = parts.map((part) => part.status);
  const providerStatus = [...new Set(parts.map((part) => part.providerStatus ?? part.status))].join(',');
  const failed = parts.find((part) => part.status === 'failed' && part.failureCode);
  const failure = failed ? { code: failed.failureCode!, message: failed.failureMessage ?? failed.failureCode! } : undefined;
  if (!statuses.every(isTerminalBatchStatus)) {
    return { status: statuses.includes('in_progress') || statuses.includes('submitted') ? 'in_progress' : statuses[0], counts, providerStatus };
  }
  const allSame = statuses.every((status) => status === statuses[0]);
  const status: BatchStatus = allSame ? statuses[0] : statuses.includes('ended') ? 'ended' : statuses[0];
  return { status, counts, providerStatus, failure: status === 'failed' || failure ? failure : undefined };
}

/**
 * Parts of the round the provider refused for a full queue (failed with one of `codes`): back to unsubmitted, each
 * under a new tag (`.q<n>` added) so a retried submit never takes the refused provider batch for its own, and the
 * submission they counted is taken back from their requests' try counts. Returns the parts reset. Call in a
 * transaction.
 */
export async function resetRefusedParts(db: Queryable, batchId: string, round: number, codes: readonly string[]): Promise<{ part: number; providerBatchId: string | null }[]> {
  const { rows } = await db.query(
    `SELECT part, tag, provider_batch_id FROM provider_batches
      WHERE batch_id = $1 AND round = $2 AND status = 'failed' AND failure_code = ANY($3::text[]) FOR UPDATE`,
    [batchId, round, codes],
  );
  if (rows.length === 0) return [];
  const tags = rows.map((row) => {
    const match = /^(.*)\.q(\d+)$/.exec(row.tag);
    return match ? `${match[1]}.q${Number(match[2]) + 1}` : `${row.tag}.q1`;
  });
  await db.query(
    `UPDATE provider_batches p
        SET tag = u.tag, provider_batch_id = NULL, status = 'pending', provider_status = NULL, request_counts = '{}'::jsonb,
            results_available = false, failure_code = NULL, failure_message = NULL, submitted_at = NULL, ended_at = NULL
       FROM unnest($3::int[], $4::text[]) AS u(part, tag)
      WHERE p.batch_id = $1 AND p.round = $2 AND p.part = u.part`,
    [batchId, round, rows.map((row) => row.part), tags],
  );
  await uncountPartSubmissions(db, batchId, round, rows.map((row) => row.part));
  return rows.map((row) => ({ part: row.part, providerBatchId: row.provider_batch_id }));
}

/** Parts of the round never submitted (an operator cancel while queued): canceled, nothing to wait for. */
export async function cancelUnsubmittedParts(db: Queryable, batchId: string, round: number): Promise<{ unsubmitted: number; live: number }> {
  const { rowCount } = await db.query(
    `UPDATE provider_batches SET status = 'canceled', provider_status = 'not_submitted', ended_at = now()
      WHERE batch_id = $1 AND round = $2 AND provider_batch_id IS NULL AND status = 'pending'`,
    [batchId, round],
  );
  const terminal = TERMINAL_BATCH_STATUSES as readonly string[];
  const { rows } = await db.query(
    `SELECT count(*)::int AS n FROM provider_batches WHERE batch_id = $1 AND round = $2 AND provider_batch_id IS NOT NULL AND status <> ALL($3::text[])`,
    [batchId, round, terminal],
  );
  return { unsubmitted: rowCount ?? 0, live: rows[0].n };
}

/** Parts of every round whose results are stored and whose provider files are not deleted yet. */
export async function partsWithFilesToDelete(db: Queryable, batchId: string): Promise<ProviderBatchRecord[]> {
  const { rows } = await db.query(
    `SELECT * FROM provider_batches
      WHERE batch_id = $1 AND provider_batch_id IS NOT NULL AND results_fetched_at IS NOT NULL AND files_deleted_at IS NULL
      ORDER BY round, part`,
    [batchId],
  );
  return rows.map(toRecord);
}

/** Stamps a part's files as deleted at the provider. */
export async function markPartFilesDeleted(db: Queryable, part: { batchId: string; round: number; part: number }): Promise<void> {
  await db.query(
    `UPDATE provider_batches SET files_deleted_at = COALESCE(files_deleted_at, now()) WHERE batch_id = $1 AND round = $2 AND part = $3`,
    [part.batchId, part.round, part.part],
  );
}

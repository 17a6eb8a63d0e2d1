import type { AdmissionBudget } from '../domain/admission';
import type { Queryable } from './queryable';

/**
 * SQL for admission_budgets and admissions: permits per batch round, counted against a budget per provider and model.
 * Every decision locks the budget row first (FOR UPDATE), so two workers never admit past it; permits are rows that
 * belong to a batch, so a worker that dies mid-decision rolls back and leaks nothing. Rule: strictly oldest first.
 * A waiting permit is granted only when every older waiting permit of its budget was, and when it fits next to the
 * held ones (or nothing is held: a batch larger than the whole budget still runs, alone). A head that backs off
 * after a queue-limit refusal (not_before) holds the line: the provider said the queue is full, so nothing younger
 * is sent past it either.
 */

export interface AdmissionRecord {
  batchId: string;
  round: number;
  provider: string;
  model: string;
  estimatedTokens: number;
  requests: number;
  providerBatches: number;
  estimator: string;
  requestedAt: Date;
  admittedAt: Date | null;
  releasedAt: Date | null;
  notBefore: Date | null;
  queueLimitFailures: number;
}

function toRecord(row: Record<string, any>): AdmissionRecord {
  return {
    batchId: row.batch_id,
    round: row.round,
    provider: row.provider,
    model: row.model,
    estimatedTokens: Number(row.estimated_tokens),
    requests: row.requests,
    providerBatches: row.provider_batches,
    estimator: row.estimator,
    requestedAt: row.requested_at,
    admittedAt: row.admitted_at,
    releasedAt: row.released_at,
    notBefore: row.not_before,
    queueLimitFailures: row.queue_limit_failures,
  };
}

/** Writes the budget's limits (the worker's configuration) and locks its row for the rest of the transaction. */
export async function lockBudget(db: Queryable, provider: string, model: string, budget: AdmissionBudget): Promise<void> {
  await db.query(
    `INSERT INTO admission_budgets (provider, model, max_enqueued_tokens, max_requests, max_open_batches)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (provider, model) DO UPDATE
        SET max_enqueued_tokens = EXCLUDED.max_enqueued_tokens, max_requests = EXCLUDED.max_requests,
            max_open_batches = EXCLUDED.max_open_batches, updated_at = now()`,
    [provider, model, budget.maxEnqueuedTokens ?? null, budget.maxRequests ?? null, budget.maxOpenBatches ?? null],
  );
}

/** Locks a budget row that exists (a release: the limits stay as the last admission wrote them). */
async function lockExistingBudget(db: Queryable, provider: string, model: string): Promise<AdmissionBudget | null> {
  const { rows } = await db.query(
    `SELECT max_enqueued_tokens, max_requests, max_open_batches FROM admission_budgets WHERE provider = $1 AND model = $2 FOR UPDATE`,
    [provider, model],
  );
  if (!rows[0]) return null;
  return {
    ...(rows[0].max_enqueued_tokens !== null ? { maxEnqueuedTokens: Number(rows[0].max_enqueued_tokens) } : {}),
    ...(rows[0].max_requests !== null ? { maxRequests: Number(rows[0].max_requests) } : {}),
    ...(rows[0].max_open_batches !== null ? { maxOpenBatches: rows[0].max_open_batches } : {}),
  };
}

export async function getAdmission(db: Queryable, batchId: string, round: number): Promise<AdmissionRecord | null> {
  const { rows } = await db.query(`SELECT * FROM admissions WHERE batch_id = $1 AND round = $2`, [batchId, round]);
  return rows[0] ? toRecord(rows[0]) : null;
}

/** Every permit of a batch, oldest round first (the CLI and the tests). */
export async function listAdmissions(db: Queryable, batchId: string): Promise<AdmissionRecord[]> {
  const { rows } = await db.query(`SELECT * FROM admissions WHERE batch_id = $1 ORDER BY round`, [batchId]);
  return rows.map(toRecord);
}

/** Asks for a permit for the round (once: a second ask keeps the first one's place). Call with the budget locked. */
export async function requestPermit(
  db: Queryable,
  permit: { batchId: string; round: number; provider: string; model: string; estimatedTokens: number; requests: number; providerBatches: number; estimator: string },
): Promise<void> {
  await db.query(
    `INSERT INTO admissions (batch_id, round, provider, model, estimated_tokens, requests, provider_batches, estimator)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (batch_id, round) DO NOTHING`,
    [permit.batchId, permit.round, permit.provider, permit.model, permit.estimatedTokens, permit.requests, permit.providerBatches, permit.estimator],
  );
}

/**
 * Grants waiting permits of the budget, oldest first, while they fit; stops at the first that does not (or that
 * backs off). Returns the batches granted now with their workflow ids, to wake them. Call with the budget locked.
 */
export async function grantInOrder(db: Queryable, provider: string, model: string, budget: AdmissionBudget): Promise<{ batchId: string; workflowId: string }[]> {
  const { rows } = await db.query(
    `SELECT a.batch_id, a.round, a.estimated_tokens, a.requests, a.provider_batches, a.admitted_at IS NOT NULL AS held,
            (a.not_before IS NULL OR a.not_before <= clock_timestamp()) AS eligible, b.workflow_id
       FROM admissions a JOIN batches b ON b.id = a.batch_id
      WHERE a.provider = $1 AND a.model = $2 AND a.released_at IS NULL
      ORDER BY a.requested_at, a.batch_id`,
    [provider, model],
  );
  const held = { tokens: 0, requests: 0, batches: 0, permits: 0 };
  for (const row of rows) {
    if (!row.held) continue;
    held.tokens += Number(row.estimated_tokens);
    held.requests += row.requests;
    held.batches += row.provider_batches;
    held.permits += 1;
  }
  const granted: { batchId: string; workflowId: string }[] = [];
  for (const row of rows) {
    if (row.held) continue;
    if (!row.eligible) break;
    const tokens = Number(row.estimated_tokens);
    const fits = held.permits === 0 || (
      (budget.maxEnqueuedTokens === undefined || held.tokens + tokens <= budget.maxEnqueuedTokens)
      && (budget.maxRequests === undefined || held.requests + row.requests <= budget.maxRequests)
      && (budget.maxOpenBatches === undefined || held.batches + row.provider_batches <= budget.maxOpenBatches));
    if (!fits) break;
    // One statement per grant, so admitted_at follows the order of the queue.
    await db.query(`UPDATE admissions SET admitted_at = clock_timestamp() WHERE batch_id = $1 AND round = $2`, [row.batch_id, row.round]);
    held.tokens += tokens;
    held.requests += row.requests;
    held.batches += row.provider_batches;
    held.permits += 1;
    granted.push({ batchId: row.batch_id, workflowId: row.workflow_id });
  }
  return granted;
}

/** Place of a waiting permit in its budget's queue (1: next), counting only waiting permits ahead of it. */
export async function queuePosition(db: Queryable, batchId: string, round: number): Promise<number> {
  const { rows } = await db.query(
    `SELECT count(*)::int AS ahead FROM admissions a, admissions mine
      WHERE mine.batch_id = $1 AND mine.round = $2 AND a.provider = mine.provider AND a.model = mine.model
        AND a.released_at IS NULL AND a.admitted_at IS NULL AND (a.requested_at, a.batch_id) < (mine.requested_at, mine.batch_id)`,
    [batchId, round],
  );
  return (rows[0]?.ahead ?? 0) + 1;
}

/**
 * Releases the batch's permits (every round up to `throughRound`; a permit still waiting is withdrawn) and grants
 * what now fits of each budget they were counted in. Returns the batches granted.
 */
export async function releasePermits(db: Queryable, batchId: string, throughRound: number): Promise<{ batchId: string; workflowId: string }[]> {
  const { rows } = await db.query(
    `SELECT batch_id, round, provider, model FROM admissions WHERE batch_id = $1 AND round <= $2 AND released_at IS NULL`,
    [batchId, throughRound],
  );
  return releaseIn(db, rows);
}

/**
 * A round the provider refused for a full queue: its permit goes back to waiting at its old place in the queue, not
 * before `notBefore`; the budget's next permits are granted if they fit. Returns the grants.
 */
export async function requeuePermit(
  db: Queryable, batchId: string, round: number, notBefore: Date,
): Promise<{ found: boolean; granted: { batchId: string; workflowId: string }[] }> {
  const mine = await getAdmission(db, batchId, round);
  if (!mine) return { found: false, granted: [] };
  const budget = await lockExistingBudget(db, mine.provider, mine.model);
  await db.query(
    `UPDATE admissions SET admitted_at = NULL, released_at = NULL, not_before = $3, queue_limit_failures = queue_limit_failures + 1
      WHERE batch_id = $1 AND round = $2`,
    [batchId, round, notBefore],
  );
  return { found: true, granted: budget ? await grantInOrder(db, mine.provider, mine.model, budget) : [] };
}

/**
 * Permits whose batch is done with them: the round is over (results fetched, a later round begun, the handler ran),
 * or the batch is terminal. What the sweep releases for workflows that disappeared.
 */
export async function releaseFinishedPermits(
  db: Queryable, terminalStatuses: readonly string[],
): Promise<{ released: number; granted: { batchId: string; workflowId: string }[] }> {
  const { rows } = await db.query(
    `SELECT a.batch_id, a.round, a.provider, a.model FROM admissions a JOIN batches b ON b.id = a.batch_id
      WHERE a.released_at IS NULL
        AND (a.round < b.round OR b.results_fetched_at IS NOT NULL OR b.handler_dispatched_at IS NOT NULL
             OR (b.status = ANY($1::text[]) AND a.admitted_at IS NOT NULL))`,
    [terminalStatuses],
  );
  return { released: rows.length, granted: await releaseIn(db, rows) };
}

async function releaseIn(
  db: Queryable, permits: { batch_id: string; round: number; provider: string; model: string }[],
): Promise<{ batchId: string; workflowId: string }[]> {
  const byBudget = new Map<string, { provider: string; model: string; permits: typeof permits }>();
  for (const permit of permits) {
    const key = JSON.stringify([permit.provider, permit.model]);
    const entry = byBudget.get(key) ?? { provider: permit.provider, model: permit.model, permits: [] };
    entry.permits.push(permit);
    byBudget.set(key, entry);
  }
  const granted: { batchId: string; workflowId: string }[] = [];
  // Budgets locked in name order, so two releases never wait on each other crosswise.
  for (const entry of [...byBudget.values()].sort((a, b) => (a.provider + '\0' + a.model).localeCompare(b.provider + '\0' + b.model))) {
    const budget = await lockExistingBudget(db, entry.provider, entry.model);
    // A permit never admitted (withdrawn while waiting) is stamped admitted and released at once.
    await db.query(
      `UPDATE admissions a SET admitted_at = COALESCE(a.admitted_at, clock_timestamp()), released_at = clock_timestamp()
         FROM unnest($1::uuid[], $2::int[]) AS k(batch_id, round)
        WHERE a.batch_id = k.batch_id AND a.round = k.round AND a.released_at IS NULL`,
      [entry.permits.map((permit) => permit.batch_id), entry.permits.map((permit) => permit.round)],
    );
    if (budget) granted.push(...(await grantInOrder(db, entry.provider, entry.model, budget)));
  }
  return granted;
}

/** Permits held or waiting per budget: what the tests and operators check ("0 held at the end"). */
export async function openPermits(db: Queryable): Promise<{ provider: string; model: string; held: number; waiting: number }[]> {
  const { rows } = await db.query(
    `SELECT provider, model, count(*) FILTER (WHERE admitted_at IS NOT NULL)::int AS held,
            count(*) FILTER (WHERE admitted_at IS NULL)::int AS waiting
       FROM admissions WHERE released_at IS NULL GROUP BY provider, model ORDER BY provider, model`,
  );
  return rows.map((row) => ({ provider: row.provider, model: row.model, held: row.held, waiting: row.waiting }));
}

/**
 * The seed's design (/work/shared/seeds/raif-resume-stalled-batch-polls.txt, shared/reference/raif-batches.md §2-4),
 * queue-agnostic: what the pg-boss and BullMQ peers (pgboss.ts, bullmq.ts) run, so the difference between them and
 * batchkeeper is the orchestration alone. They use batchkeeper's provider adapters, its results ingest
 * (activities/store-part-results.ts → db/results-store.ts), its request and part tables (batchkeeper's migrations,
 * applied in the peer's own PostgreSQL schema) and its handler contract (activities/handlers.ts).
 *
 * The chain, as Raif documents it:
 * - submit: single-shot (only a batch with no provider id is submitted; a part whose id is stored is never sent again),
 *   then `enqueue_first_poll!`: next_poll_at = now + schedule[0] and a delayed poll job with attempt 1.
 * - poll(batch, attempt): (a) batch missing: return; (b) terminal: finalize + dispatch; (c) fetch_status! (a row-locked
 *   write that never overwrites a terminal status); (d) now terminal: finalize + dispatch; (e) max age exceeded:
 *   expire! + dispatch; (f) reschedule!: delay = schedule[clamp(attempt-1)], next_poll_at = now + delay, enqueue
 *   attempt + 1 (so the first entry is used twice: 60 s, 60 s, 2 m, ...). A transient provider error (connection,
 *   timeout, 5xx; Raif's list has no 429) reschedules with the same delay; any other error is re-raised to the
 *   queue's retry policy, and when that gives up the chain is gone.
 * - resume sweep (every 5 min): every non-terminal batch whose next_poll_at is more than POLL_GRACE (5 min) in the
 *   past gets an immediate poll with attempt 1 (the backoff restarts).
 * - expire sweep (hourly): every non-terminal batch submitted more than max age (26 h) ago is expired without a
 *   status read: best-effort cancel, force_fail! (every request without a stored result fails, nothing is fetched),
 *   then dispatch.
 * - finalize!: once; an `ended` batch has its results fetched, any other terminal status is force-failed (partial
 *   results are not fetched). dispatch: only with results fetched, under the row lock, stamped after the handler.
 */
import type { Pool, PoolClient } from 'pg';
import type { BatchHandlerRegistry } from '../../../activities/handlers';
import { registered } from '../../../activities/handlers';
import { storePartResults, type LeftoverOutcome } from '../../../activities/store-part-results';
import { getBatch, summarizeRequests } from '../../../db/batches-store';
import { inTransaction, schemaOf } from '../../../db/pool';
import { aggregateParts, listParts, planParts, recordPartSubmitted, type ProviderBatchRecord } from '../../../db/provider-batches-store';
import { iterateRequestBodies, listRequests } from '../../../db/requests-store';
import { withAppSearchPath } from '../../../db/schema';
import { isTerminalBatchStatus, TERMINAL_BATCH_STATUSES } from '../../../domain/statuses';
import type { BatchStatus, RequestStatus } from '../../../domain/types';
import { ProviderError } from '../../../providers/errors';
import type { BatchProvider } from '../../../providers/types';

// ---------------------------------------------------------------------------------------------------------------
// Timing: the seed's constants, and the one compression the bench applies to every system alike

export interface PeerTiming {
  /** The poll schedule; the last entry repeats. */
  pollScheduleMs: number[];
  /** POLL_GRACE of the resume sweep. */
  pollGraceMs: number;
  /** How often the host runs the resume sweep (Raif's docs: every 5 minutes). */
  resumeEveryMs: number;
  /** How often the host runs the expire sweep (hourly). */
  expireEveryMs: number;
  /** model_completion_batch_max_age (26 h). */
  maxAgeMs: number;
  /**
   * When set, the queues' own failure detection is compressed by this factor too, floored at 5 s (pg-boss's 15-minute
   * job expiry and 2-minute maintenance; BullMQ's 30 s lock and stalled-job check); unset, their defaults.
   */
  failureDetectionScale?: number;
}

export const SEED_TIMING: PeerTiming = {
  pollScheduleMs: [60_000, 120_000, 300_000, 600_000, 1_800_000],
  pollGraceMs: 300_000,
  resumeEveryMs: 300_000,
  expireEveryMs: 3_600_000,
  maxAgeMs: 26 * 3_600_000,
};

/** The seed's timing divided by `factor` (e.g. 300: 60 s → 200 ms, 5 min → 1 s, 1 h → 12 s, 26 h → 312 s). */
export function scaledTiming(factor: number, overrides: Partial<PeerTiming> = {}): PeerTiming {
  const scale = (ms: number) => Math.max(1, Math.round(ms / factor));
  return {
    pollScheduleMs: SEED_TIMING.pollScheduleMs.map(scale),
    pollGraceMs: scale(SEED_TIMING.pollGraceMs),
    resumeEveryMs: scale(SEED_TIMING.resumeEveryMs),
    expireEveryMs: scale(SEED_TIMING.expireEveryMs),
    maxAgeMs: scale(SEED_TIMING.maxAgeMs),
    ...overrides,
  };
}

/**
 * The host's retry policy for a job that raised (ActiveJob's retry_on in Raif's setting), the same on both queues:
 * 3 attempts, 1 s doubling. Not compressed: like the queues' own failure detection it is not part of the schedule.
 */
export const JOB_RETRY = { attempts: 3, delayMs: 1000 } as const;

// ---------------------------------------------------------------------------------------------------------------
// The peers' own state (Raif's model_completion_batches columns), beside batchkeeper's tables in the peer's schema

const TERMINAL = [...TERMINAL_BATCH_STATUSES] as string[];
const UNIQUE_VIOLATION = '23505';

export const PEER_TABLES_DDL = [
  `CREATE TABLE IF NOT EXISTS peer_batches (
     batch_id uuid PRIMARY KEY REFERENCES batches (id),
     status text NOT NULL DEFAULT 'pending',
     next_poll_at timestamptz,
     submitted_at timestamptz,
     ended_at timestamptz,
     results_fetched_at timestamptz,
     handler_dispatched_at timestamptz,
     failed_at timestamptz,
     failure_reason text,
     polls integer NOT NULL DEFAULT 0,
     created_at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  `CREATE INDEX IF NOT EXISTS peer_batches_due_idx ON peer_batches (next_poll_at)
     WHERE status NOT IN ('ended', 'canceled', 'expired', 'failed')`,
];

export async function createPeerTables(pool: Pool): Promise<void> {
  for (const ddl of PEER_TABLES_DDL) await pool.query(ddl);
}

/** The row a peer keeps for a batch once the app created it (batches + batch_requests, through insertBatch). */
export async function insertPeerBatch(db: Pool | PoolClient, batchId: string): Promise<void> {
  await db.query('INSERT INTO peer_batches (batch_id) VALUES ($1) ON CONFLICT DO NOTHING', [batchId]);
}

// ---------------------------------------------------------------------------------------------------------------
// The queue the chain runs on

export interface PollJobData {
  batchId: string;
  attempt: number;
}

export interface ChainQueue {
  /** A poll job for `data` that becomes runnable after `delayMs` (0: now). */
  enqueuePoll(data: PollJobData, delayMs: number): Promise<void>;
}

/** What a runner counts in its process (read by the bench over IPC). */
export class ChainStats {
  /** ms between a poll's due time (its batch's next_poll_at) and its start, one entry per poll. */
  lateness: number[] = [];
  polls = 0;
  statusReads = 0;
  transientErrors = 0;
  raised = 0;
  resumed = 0;
  expired = 0;
  dispatched = 0;
  reset(): void {
    this.lateness = [];
    this.polls = this.statusReads = this.transientErrors = this.raised = this.resumed = this.expired = this.dispatched = 0;
  }
  snapshot() {
    return {
      lateness: this.lateness, polls: this.polls, statusReads: this.statusReads, transientErrors: this.transientErrors, raised: this.raised,
      resumed: this.resumed, expired: this.expired, dispatched: this.dispatched,
    };
  }
}

export interface ChainDeps {
  /** On the peer's schema (createPool(url, { schema })). */
  pool: Pool;
  providers: Map<string, BatchProvider>;
  handlers: BatchHandlerRegistry;
  timing: PeerTiming;
  queue: ChainQueue;
  stats?: ChainStats;
  log?: (message: string) => void;
}

interface PeerRow {
  status: string;
  next_poll_at: Date | null;
  submitted_at: Date | null;
  results_fetched_at: Date | null;
  handler_dispatched_at: Date | null;
}

/** Raif's `llm_request_retriable_exceptions`: connection failures, timeouts, 5xx. A 429 is not among them. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof ProviderError)) return false;
  if (error.details.httpStatus === 429) return false;
  return error.details.retryable;
}

export class PeerChain {
  private readonly stats: ChainStats;
  constructor(private readonly deps: ChainDeps) {
    this.stats = deps.stats ?? new ChainStats();
  }

  private provider(name: string): BatchProvider {
    const provider = this.deps.providers.get(name);
    if (!provider) throw new Error(`no provider named '${name}' is configured on this peer worker`);
    return provider;
  }

  private async row(batchId: string): Promise<PeerRow | null> {
    const { rows } = await this.deps.pool.query<PeerRow>(
      'SELECT status, next_poll_at, submitted_at, results_fetched_at, handler_dispatched_at FROM peer_batches WHERE batch_id = $1', [batchId],
    );
    return rows[0] ?? null;
  }

  private delayFor(attempt: number): number {
    const schedule = this.deps.timing.pollScheduleMs;
    return schedule[Math.min(Math.max(attempt - 1, 0), schedule.length - 1)] ?? 60_000;
  }

  /** `submit!(enqueue_poll: true)`: the provider batches once, then the first delayed poll. */
  async submit(batchId: string): Promise<void> {
    const { pool } = this.deps;
    const batch = await getBatch(pool, batchId);
    const peer = await this.row(batchId);
    if (!batch || !peer) throw new Error(`batch ${batchId} does not exist`);
    if (peer.status !== 'pending') return; // assert_submittable!: only a pending batch is submitted
    const provider = this.provider(batch.provider);
    let parts = await inTransaction(pool, (db) => planParts(db, batch.id, 1, provider.limits));
    for (const part of parts) {
      if (part.providerBatchId) continue;
      const submission = await provider.submit({ batchId: part.tag, model: batch.model, requests: iterateRequestBodies(pool, batch.id, part) });
      await recordPartSubmitted(pool, part, {
        providerBatchId: submission.providerBatchId, status: submission.report.status, providerStatus: submission.report.rawStatus,
        counts: submission.report.counts,
      });
    }
    parts = await listParts(pool, batch.id, 1);
    const status = aggregateParts(parts).status;
    const delay = this.delayFor(1);
    const { rowCount } = await pool.query(
      `UPDATE peer_batches SET status = $2, submitted_at = clock_timestamp(), next_poll_at = clock_timestamp() + $3 * interval '1 millisecond'
        WHERE batch_id = $1 AND status = 'pending'`,
      [batchId, status === 'pending' ? 'submitted' : status, delay],
    );
    if (rowCount) await this.deps.queue.enqueuePoll({ batchId, attempt: 1 }, delay);
  }

  /** PollModelCompletionBatchJob#perform. */
  async poll(data: PollJobData): Promise<void> {
    const { batchId, attempt } = data;
    const row = await this.row(batchId);
    if (!row) return; // (a)
    this.stats.polls += 1;
    if (row.next_poll_at) this.stats.lateness.push(Date.now() - row.next_poll_at.getTime());
    try {
      if (isTerminalBatchStatus(row.status)) { // (b)
        await this.finalize(batchId);
        await this.dispatch(batchId);
        return;
      }
      const status = await this.fetchStatus(batchId); // (c)
      if (isTerminalBatchStatus(status)) { // (d)
        await this.finalize(batchId);
        await this.dispatch(batchId);
        return;
      }
      if (row.submitted_at && Date.now() - row.submitted_at.getTime() > this.deps.timing.maxAgeMs) { // (e)
        await this.expire(batchId, `Batch exceeded max_age (${this.deps.timing.maxAgeMs} ms)`);
        return;
      }
      await this.reschedule(batchId, attempt); // (f)
    } catch (error) {
      if (isTransient(error)) {
        this.stats.transientErrors += 1;
        const now = await this.row(batchId);
        if (!now || (isTerminalBatchStatus(now.status) && now.handler_dispatched_at)) return;
        await this.reschedule(batchId, attempt);
        return;
      }
      this.stats.raised += 1;
      throw error;
    }
  }

  private async reschedule(batchId: string, attempt: number): Promise<void> {
    const delay = this.delayFor(attempt);
    await this.deps.pool.query(
      `UPDATE peer_batches SET next_poll_at = clock_timestamp() + $2 * interval '1 millisecond', polls = polls + 1 WHERE batch_id = $1`,
      [batchId, delay],
    );
    await this.deps.queue.enqueuePoll({ batchId, attempt: attempt + 1 }, delay);
  }

  /** fetch_status!: one read per unfinished part, written under the row lock; a terminal status is never replaced. */
  private async fetchStatus(batchId: string): Promise<BatchStatus> {
    const { pool } = this.deps;
    const batch = await getBatch(pool, batchId);
    if (!batch) throw new Error(`batch ${batchId} does not exist`);
    const provider = this.provider(batch.provider);
    const parts = await listParts(pool, batchId, 1);
    const current: ProviderBatchRecord[] = [];
    for (const part of parts) {
      if (!part.providerBatchId || isTerminalBatchStatus(part.status)) {
        current.push(part);
        continue;
      }
      this.stats.statusReads += 1;
      const report = await provider.getStatus(part.providerBatchId);
      current.push({ ...part, status: report.status, providerStatus: report.rawStatus, requestCounts: report.counts, resultsAvailable: report.resultsAvailable });
    }
    const aggregate = aggregateParts(current);
    return inTransaction(pool, async (db) => {
      const locked = await db.query<{ status: string }>('SELECT status FROM peer_batches WHERE batch_id = $1 FOR UPDATE', [batchId]);
      const stored = locked.rows[0]?.status;
      if (stored === undefined) throw new Error(`batch ${batchId} does not exist`);
      if (isTerminalBatchStatus(stored)) return stored as BatchStatus;
      for (const part of current) {
        await db.query(
          `UPDATE provider_batches SET status = $4, provider_status = $5, request_counts = $6, results_available = $7
            WHERE batch_id = $1 AND round = $2 AND part = $3 AND status <> ALL($8::text[])`,
          [part.batchId, part.round, part.part, part.status, part.providerStatus, part.requestCounts, part.resultsAvailable, TERMINAL],
        );
      }
      await db.query(
        `UPDATE peer_batches SET status = $2, ended_at = CASE WHEN $2 = ANY($3::text[]) THEN clock_timestamp() END WHERE batch_id = $1`,
        [batchId, aggregate.status, TERMINAL],
      );
      return aggregate.status;
    });
  }

  /**
   * finalize!: an ended batch's results are fetched; any other terminal status is force-failed. Once: each part's
   * ingest is one transaction that marks the part fetched (a second finalize skips it, or meets the results' unique
   * key once the first committed and leaves it), then results_fetched_at is stamped. Raif holds the row lock across the download; here the
   * ingest runs outside it, so that a finalize never holds one connection while it waits for a second.
   */
  async finalize(batchId: string): Promise<void> {
    const { pool } = this.deps;
    const row = await this.row(batchId);
    if (!row || row.results_fetched_at || !isTerminalBatchStatus(row.status)) return;
    const batch = (await getBatch(pool, batchId))!;
    const provider = this.provider(batch.provider);
    const parts = await listParts(pool, batchId, 1);
    if (row.status === 'ended') {
      for (const part of parts) {
        if (part.resultsFetchedAt || !part.providerBatchId) continue;
        try {
          await storePartResults(pool, part, provider.streamResults(part.providerBatchId), {
            status: 'missing', message: 'no result line for this request (batch ended)',
          });
        } catch (error) {
          // A concurrent finalize (a second chain: the resume sweep raced the normal one) committed this part first:
          // what waiting on Raif's row lock would have found.
          if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
        }
      }
    } else {
      await forceFailRequests(pool, parts, { status: leftoverStatus(row.status), message: `Batch ended with status: ${row.status}` });
    }
    await pool.query('UPDATE peer_batches SET results_fetched_at = COALESCE(results_fetched_at, clock_timestamp()) WHERE batch_id = $1', [batchId]);
  }

  /** dispatch_completion_handler!: gated on results fetched, under the row lock, stamped after the handler returns. */
  async dispatch(batchId: string): Promise<void> {
    const { pool } = this.deps;
    const first = await this.row(batchId);
    if (!first || first.handler_dispatched_at || !first.results_fetched_at) return;
    await inTransaction(pool, async (db) => {
      const { rows } = await db.query<PeerRow>('SELECT status, handler_dispatched_at, results_fetched_at FROM peer_batches WHERE batch_id = $1 FOR UPDATE', [batchId]);
      const locked = rows[0];
      if (!locked || locked.handler_dispatched_at || !locked.results_fetched_at) return;
      const stored = (await getBatch(db, batchId))!;
      const outcome = locked.status as 'ended' | 'canceled' | 'expired' | 'failed';
      const batch = { ...stored, status: outcome };
      if (batch.handlerName) {
        const handler = registered(this.deps.handlers, batch.handlerName);
        if (!handler) {
          this.deps.log?.(`no completion handler named '${batch.handlerName}': dispatch skipped (batch ${batchId} stays undispatched)`);
          return;
        }
        const summary = await summarizeRequests(db, batchId);
        const schema = schemaOf(pool);
        await withAppSearchPath(db, () => handler.onComplete({
          batch, outcome, summary, db,
          results: (options = {}) => pageRequests(db, schema, batchId, options.pageSize ?? 500, options.status),
        }));
      }
      await db.query('UPDATE peer_batches SET handler_dispatched_at = clock_timestamp() WHERE batch_id = $1', [batchId]);
      this.stats.dispatched += 1;
    });
  }

  /** expire!: best-effort cancel, force_fail! (nothing fetched), then dispatch. */
  async expire(batchId: string, reason: string): Promise<void> {
    const { pool } = this.deps;
    const batch = await getBatch(pool, batchId);
    const row = await this.row(batchId);
    if (!batch || !row) return;
    if (!isTerminalBatchStatus(row.status)) {
      const provider = this.provider(batch.provider);
      for (const part of await listParts(pool, batchId, 1)) {
        if (!part.providerBatchId || isTerminalBatchStatus(part.status)) continue;
        await provider.cancel(part.providerBatchId).catch((error) => this.deps.log?.(`cancel of ${part.providerBatchId} failed: ${(error as Error).message}`));
      }
    }
    if (isTerminalBatchStatus(row.status)) return; // force_fail! keeps a terminal status
    if (!row.results_fetched_at) await forceFailRequests(pool, await listParts(pool, batchId, 1), { status: 'expired', message: reason.slice(0, 255) });
    await pool.query(
      `UPDATE peer_batches SET status = CASE WHEN status = ANY($3::text[]) THEN status ELSE 'failed' END,
              failed_at = CASE WHEN status = ANY($3::text[]) THEN failed_at ELSE clock_timestamp() END,
              failure_reason = COALESCE(failure_reason, $2), results_fetched_at = COALESCE(results_fetched_at, clock_timestamp())
        WHERE batch_id = $1`,
      [batchId, reason.slice(0, 255), TERMINAL],
    );
    this.stats.expired += 1;
    await this.dispatch(batchId);
  }

  /** ResumeStalledModelCompletionBatchPollsJob#perform: an immediate poll (attempt 1) for every batch due past the grace. */
  async resumeSweep(): Promise<number> {
    const { rows } = await this.deps.pool.query<{ batch_id: string }>(
      `SELECT batch_id FROM peer_batches WHERE status <> ALL($1::text[]) AND next_poll_at <= clock_timestamp() - $2 * interval '1 millisecond'`,
      [TERMINAL, this.deps.timing.pollGraceMs],
    );
    let enqueued = 0;
    for (const { batch_id: batchId } of rows) {
      try {
        await this.deps.queue.enqueuePoll({ batchId, attempt: 1 }, 0);
        enqueued += 1;
      } catch (error) {
        this.deps.log?.(`resume sweep: failed to enqueue poll for batch ${batchId}: ${(error as Error).message}`);
      }
    }
    this.stats.resumed += enqueued;
    return enqueued;
  }

  /** ExpireStuckModelCompletionBatchesJob#perform: expire every non-terminal batch submitted more than max age ago. */
  async expireSweep(): Promise<number> {
    const { rows } = await this.deps.pool.query<{ batch_id: string }>(
      `SELECT batch_id FROM peer_batches WHERE status <> ALL($1::text[]) AND submitted_at IS NOT NULL
          AND submitted_at < clock_timestamp() - $2 * interval '1 millisecond'`,
      [TERMINAL, this.deps.timing.maxAgeMs],
    );
    let expired = 0;
    for (const { batch_id: batchId } of rows) {
      try {
        await this.expire(batchId, `Batch exceeded max_age (${this.deps.timing.maxAgeMs} ms)`);
        expired += 1;
      } catch (error) {
        this.deps.log?.(`expire sweep: batch ${batchId}: ${(error as Error).message}`);
      }
    }
    return expired;
  }
}

function leftoverStatus(status: string): LeftoverOutcome['status'] {
  return status === 'canceled' ? 'canceled' : status === 'expired' ? 'expired' : 'missing';
}

/** force_fail!: every request of every part without stored results gets the failure outcome; nothing is fetched. */
async function forceFailRequests(pool: Pool, parts: ProviderBatchRecord[], leftover: LeftoverOutcome): Promise<void> {
  for (const part of parts) {
    if (part.resultsFetchedAt) continue;
    await storePartResults(pool, part, [], leftover);
  }
}

async function* pageRequests(db: PoolClient, schema: string, batchId: string, pageSize: number, status?: RequestStatus) {
  let afterPosition = -1;
  for (;;) {
    const page = await listRequests(db, batchId, { afterPosition, limit: pageSize, status, schema });
    yield* page;
    if (page.length < pageSize) return;
    afterPosition = page[page.length - 1].position;
  }
}

/**
 * Handlers the chaos soak's worker processes load through BATCHKEEPER_HANDLERS_MODULE.
 *
 * Every invocation is written to `public.chaos_invocations` on a pool of its own (autocommit, so attempts that later roll
 * back or die with their process are still seen). The effect itself goes to `public.chaos_effects`, whose primary key is
 * (kind, subject_id): a second effect for the same batch is not rejected (that would roll back and hide it) but
 * counted in `effects`, so the end checks catch it.
 *
 * - batch handler `chaos-record`: completion effect written through the dispatch transaction (`context.db`); fails
 *   transiently at CHAOS_HANDLER_FAILURE_RATE, and for good (non-retryable, so it is dead-lettered at once) while the
 *   batch's idempotency key is in `public.chaos_poison`; onFailure writes a `failure` effect the same way.
 * - job executor `chaos-job`: fails its first `failAttempts` attempts, sleeps `sleepMs` while heartbeating, records a
 *   `job` effect; poisoned keys fail non-retryably. Job executors run at least once (the worker can die between the
 *   executor's effect and the job's status write), so a repeated job effect is reported, not an invariant failure.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../../activities/handlers';
import { createPool } from '../../db/pool';

export const CHAOS_BATCH_HANDLER = 'chaos-record';
export const CHAOS_JOB_TYPE = 'chaos-job';

export const CHAOS_TABLES_DDL = [
  `CREATE TABLE IF NOT EXISTS public.chaos_invocations (
     id bigserial PRIMARY KEY, kind text NOT NULL, subject_id uuid NOT NULL, pid integer NOT NULL,
     attempt integer, note text, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  `CREATE INDEX IF NOT EXISTS chaos_invocations_subject_idx ON public.chaos_invocations (kind, subject_id)`,
  `CREATE TABLE IF NOT EXISTS public.chaos_effects (
     kind text NOT NULL, subject_id uuid NOT NULL, effects integer NOT NULL DEFAULT 1, outcome text,
     succeeded integer, errored integer, missing integer, results_seen integer, pid integer NOT NULL,
     first_at timestamptz NOT NULL DEFAULT clock_timestamp(), last_at timestamptz NOT NULL DEFAULT clock_timestamp(),
     PRIMARY KEY (kind, subject_id))`,
  `CREATE TABLE IF NOT EXISTS public.chaos_poison (idempotency_key text PRIMARY KEY)`,
];

export interface ChaosJobInput {
  index: number;
  /** Attempts 1..failAttempts throw a transient error. */
  failAttempts: number;
  sleepMs: number;
}

let pool: Pool | undefined;
function ownPool(): Pool {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is not set');
  pool ??= createPool(url, { max: 3, connectionTimeoutMillis: 5_000 });
  return pool;
}

const failureRate = () => Number(process.env.CHAOS_HANDLER_FAILURE_RATE ?? 0.1);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function recordInvocation(kind: string, subjectId: string, attempt: number | null, note: string | null): Promise<void> {
  await ownPool().query(
    'INSERT INTO public.chaos_invocations (kind, subject_id, pid, attempt, note) VALUES ($1, $2, $3, $4, $5)',
    [kind, subjectId, process.pid, attempt, note],
  );
}

const EFFECT_SQL = `INSERT INTO public.chaos_effects (kind, subject_id, outcome, succeeded, errored, missing, results_seen, pid)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (kind, subject_id) DO UPDATE SET effects = public.chaos_effects.effects + 1, last_at = clock_timestamp()`;

export const handlers: BatchHandlerRegistry = {
  [CHAOS_BATCH_HANDLER]: {
    async onComplete({ batch, outcome, summary, results, db }) {
      // Best effort: when PostgreSQL is down the dispatch transaction fails anyway and the step is retried.
      await recordInvocation('complete', batch.id, null, outcome).catch(() => undefined);
      const poisoned = await db.query('SELECT 1 FROM public.chaos_poison WHERE idempotency_key = $1', [batch.idempotencyKey]);
      if (poisoned.rowCount) {
        throw ApplicationFailure.create({ type: 'ChaosPoison', message: `batch ${batch.id} is poisoned`, nonRetryable: true });
      }
      if (Math.random() < failureRate()) throw new Error(`chaos: transient handler failure for batch ${batch.id}`);
      let seen = 0;
      for await (const _request of results({ pageSize: 50 })) seen += 1;
      await sleep(Math.floor(Math.random() * 150)); // widen the window in which a SIGKILL can land mid-dispatch
      await db.query(EFFECT_SQL, ['complete', batch.id, outcome, summary.succeeded, summary.errored, summary.missing, seen, process.pid]);
    },
    async onFailure({ batch, deadLetter, db }) {
      await recordInvocation('failure', batch.id, null, deadLetter.step).catch(() => undefined);
      await db.query(EFFECT_SQL, ['failure', batch.id, 'discarded', null, null, null, null, process.pid]);
    },
  },
};

export const jobExecutors: JobExecutorRegistry = {
  [CHAOS_JOB_TYPE]: {
    async execute(rawInput, { job, attempt, heartbeat }) {
      const input = rawInput as ChaosJobInput;
      await recordInvocation('job', job.id, attempt, null);
      const poisoned = await ownPool().query('SELECT 1 FROM public.chaos_poison WHERE idempotency_key = $1', [job.idempotencyKey]);
      if (poisoned.rowCount) {
        throw ApplicationFailure.create({ type: 'ChaosPoison', message: `job ${job.id} is poisoned`, nonRetryable: true });
      }
      if (attempt <= input.failAttempts) throw new Error(`chaos: transient failure of job ${job.id} on attempt ${attempt}`);
      for (let slept = 0; slept < input.sleepMs; slept += 200) {
        await sleep(Math.min(200, input.sleepMs - slept));
        heartbeat({ slept });
      }
      await ownPool().query(EFFECT_SQL, ['job', job.id, 'succeeded', null, null, null, null, process.pid]);
      return { index: input.index, attempt };
    },
    async onFailure(job, deadLetter) {
      await recordInvocation('job_failure', job.id, null, deadLetter.step);
      await ownPool().query(EFFECT_SQL, ['job_failure', job.id, 'discarded', null, null, null, null, process.pid]);
    },
  },
};

import { FINAL_JOB_STATUSES, JOB_STATUSES, type JobStatus } from '../domain/statuses';
import type { RetrySettings } from '../domain/types';
import { appendEvent } from './events-store';
import type { Queryable } from './queryable';

/** SQL for generic async jobs. */

export interface JobRecord {
  id: string;
  idempotencyKey: string;
  workflowId: string;
  jobType: string;
  status: JobStatus;
  input: unknown;
  inputRef: string | null;
  output: unknown;
  retryPolicy: Partial<RetrySettings> | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  failureCode: string | null;
  failureMessage: string | null;
}

const COLUMNS = `id, idempotency_key, workflow_id, job_type, status, input, input_ref, output, retry_policy, created_at,
  started_at, finished_at, failure_code, failure_message`;

function toRecord(row: Record<string, any>): JobRecord {
  return {
    id: row.id,
    idempotencyKey: row.idempotency_key,
    workflowId: row.workflow_id,
    jobType: row.job_type,
    status: row.status,
    input: row.input,
    inputRef: row.input_ref,
    output: row.output,
    retryPolicy: row.retry_policy,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    failureCode: row.failure_code,
    failureMessage: row.failure_message,
  };
}

/** Inserts the job unless its idempotency key exists; returns the stored job either way. */
export async function insertJob(
  db: Queryable,
  job: { id: string; idempotencyKey: string; workflowId: string; jobType: string; input: unknown; inputRef: string | null; retryPolicy: Partial<RetrySettings> | null },
): Promise<{ job: JobRecord; created: boolean }> {
  const { rows } = await db.query(
    `INSERT INTO jobs (id, idempotency_key, workflow_id, job_type, input, input_ref, retry_policy)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (idempotency_key) DO NOTHING
     RETURNING ${COLUMNS}`,
    [job.id, job.idempotencyKey, job.workflowId, job.jobType, job.input === undefined ? null : JSON.stringify(job.input), job.inputRef, job.retryPolicy],
  );
  if (rows[0]) {
    await appendEvent(db, 'job', job.id, 'created', { toStatus: 'pending', detail: { jobType: job.jobType } });
    return { job: toRecord(rows[0]), created: true };
  }
  const existing = await findJobByIdempotencyKey(db, job.idempotencyKey);
  if (!existing) throw new Error(`job with idempotency key ${job.idempotencyKey} vanished`);
  return { job: existing, created: false };
}

export async function getJob(db: Queryable, id: string): Promise<JobRecord | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM jobs WHERE id = $1`, [id]);
  return rows[0] ? toRecord(rows[0]) : null;
}

export async function findJobByIdempotencyKey(db: Queryable, key: string): Promise<JobRecord | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM jobs WHERE idempotency_key = $1`, [key]);
  return rows[0] ? toRecord(rows[0]) : null;
}

/** Moves a job to a new status and logs it; final statuses are never left again. */
export async function setJobStatus(
  db: Queryable,
  id: string,
  status: JobStatus,
  fields: { output?: unknown; failureCode?: string; failureMessage?: string } = {},
): Promise<void> {
  const { rows } = await db.query(
    `WITH before AS (SELECT status FROM jobs WHERE id = $1 FOR UPDATE)
     UPDATE jobs j
        SET status = CASE WHEN before.status = ANY($6::text[]) THEN before.status ELSE $2 END,
            output = COALESCE($3::jsonb, j.output),
            failure_code = COALESCE($4, j.failure_code), failure_message = COALESCE($5, j.failure_message),
            started_at = CASE WHEN $2 = 'running' THEN COALESCE(j.started_at, now()) ELSE j.started_at END,
            finished_at = CASE WHEN $2 = ANY($6::text[]) THEN COALESCE(j.finished_at, now()) ELSE j.finished_at END,
            updated_at = now()
       FROM before WHERE j.id = $1
      RETURNING before.status AS from_status, j.status AS status`,
    [id, status, fields.output === undefined ? null : JSON.stringify(fields.output), fields.failureCode ?? null, fields.failureMessage ?? null, FINAL_JOB_STATUSES],
  );
  if (!rows[0]) throw new Error(`job ${id} does not exist`);
  if (rows[0].from_status !== rows[0].status) {
    await appendEvent(db, 'job', id, 'status_changed', { fromStatus: rows[0].from_status, toStatus: rows[0].status });
  }
}

/** Jobs not yet over, oldest first: what the sweep checks. */
export async function listUnfinishedJobIds(db: Queryable, limit: number): Promise<string[]> {
  const unfinished = JOB_STATUSES.filter((status) => !(FINAL_JOB_STATUSES as readonly string[]).includes(status));
  const { rows } = await db.query(`SELECT id FROM jobs WHERE status = ANY($1::text[]) ORDER BY created_at LIMIT $2`, [unfinished, limit]);
  return rows.map((row) => row.id);
}

import type { StepName, SubjectKind } from '../domain/types';
import { appendEvent } from './events-store';
import type { Queryable } from './queryable';
import { SqlParams } from './sql-params';

/** SQL for try counts per step (step_attempts). */

export interface StepAttemptRecord {
  step: StepName;
  attempt: number;
  totalAttempts: number;
  rounds: number;
  lastAttemptAt: Date | null;
  firstFailureAt: Date | null;
  lastErrorClass: string | null;
  lastError: string | null;
  succeededAt: Date | null;
}

/**
 * Called at the start of a retry (Temporal's 1-based attempt number ≥ 2), so a retry in progress shows in
 * PostgreSQL. A first attempt is recorded once, when it ends (recordFirstAttemptOutcome). With no row yet (the first
 * attempt died with its worker), the total is the attempt number.
 */
export async function recordAttemptStart(db: Queryable, kind: SubjectKind, subjectId: string, step: StepName, attempt: number) {
  await db.query(
    `INSERT INTO step_attempts (subject_kind, subject_id, step, attempt, total_attempts, last_attempt_at)
     VALUES ($1, $2, $3, $4, $4, now())
     ON CONFLICT (subject_kind, subject_id, step) DO UPDATE
       SET attempt = EXCLUDED.attempt, total_attempts = step_attempts.total_attempts + 1, last_attempt_at = now(),
           succeeded_at = NULL`,
    [kind, subjectId, step, attempt],
  );
}

/**
 * Records a first attempt (attempt 1 of a round) once it has ended: one statement instead of a start and an end
 * write, which is most of the bookkeeping of a batch whose steps succeed first time (each poll is a first attempt).
 */
export async function recordFirstAttemptOutcome(
  db: Queryable, ref: StepAttemptRef, failure: { errorClass: string; message: string } | null,
) {
  const params = new SqlParams();
  await db.query(firstAttemptOutcomeSql(params, ref, failure), params.values);
}

/** Identifies one attempt of one step. */
export interface StepAttemptRef {
  kind: SubjectKind;
  subjectId: string;
  step: StepName;
  /** Temporal's 1-based attempt number. */
  attempt?: number;
  startedAt: Date;
}

/**
 * The statement (or CTE body) that records a successful attempt: a first attempt in one upsert, a retry by
 * stamping the row its start created. Lets a step fold this write into its own last statement.
 */
export function attemptSucceededSql(params: SqlParams, ref: StepAttemptRef): string {
  if ((ref.attempt ?? 1) > 1) {
    return `UPDATE step_attempts SET succeeded_at = now(), first_failure_at = NULL
             WHERE subject_kind = ${params.add(ref.kind)} AND subject_id = ${params.add(ref.subjectId)}::uuid AND step = ${params.add(ref.step)}`;
  }
  return firstAttemptOutcomeSql(params, ref, null);
}

function firstAttemptOutcomeSql(
  params: SqlParams, ref: Omit<StepAttemptRef, 'attempt'>, failure: { errorClass: string; message: string } | null,
): string {
  const errorClass = params.add(failure?.errorClass ?? null);
  const message = params.add(failure ? failure.message.slice(0, 4000) : null);
  return `INSERT INTO step_attempts (subject_kind, subject_id, step, attempt, total_attempts, last_attempt_at, succeeded_at,
                                     first_failure_at, last_error_class, last_error)
          VALUES (${params.add(ref.kind)}, ${params.add(ref.subjectId)}::uuid, ${params.add(ref.step)}, 1, 1, ${params.add(ref.startedAt)}::timestamptz,
                  CASE WHEN ${errorClass}::text IS NULL THEN now() END, CASE WHEN ${errorClass}::text IS NOT NULL THEN now() END,
                  ${errorClass}::text, ${message}::text)
          ON CONFLICT (subject_kind, subject_id, step) DO UPDATE
            SET attempt = 1, total_attempts = step_attempts.total_attempts + 1, last_attempt_at = EXCLUDED.last_attempt_at,
                succeeded_at = EXCLUDED.succeeded_at,
                first_failure_at = CASE WHEN ${errorClass}::text IS NULL THEN NULL ELSE COALESCE(step_attempts.first_failure_at, now()) END,
                last_error_class = COALESCE(EXCLUDED.last_error_class, step_attempts.last_error_class),
                last_error = COALESCE(EXCLUDED.last_error, step_attempts.last_error)`;
}

export async function recordAttemptFailure(
  db: Queryable, kind: SubjectKind, subjectId: string, step: StepName, errorClass: string, message: string,
) {
  await db.query(
    `UPDATE step_attempts SET last_error_class = $4, last_error = $5, first_failure_at = COALESCE(first_failure_at, now())
      WHERE subject_kind = $1 AND subject_id = $2 AND step = $3`,
    [kind, subjectId, step, errorClass, message.slice(0, 4000)],
  );
}

export async function recordAttemptSuccess(db: Queryable, ref: StepAttemptRef) {
  const params = new SqlParams();
  await db.query(attemptSucceededSql(params, ref), params.values);
}

/** A requeue starts a new round with a fresh try count. */
export async function startNewRound(db: Queryable, kind: SubjectKind, subjectId: string, step: StepName) {
  await db.query(
    `UPDATE step_attempts SET attempt = 0, rounds = rounds + 1, first_failure_at = NULL WHERE subject_kind = $1 AND subject_id = $2 AND step = $3`,
    [kind, subjectId, step],
  );
  await appendEvent(db, kind, subjectId, 'step_requeued', { detail: { step } });
}

export async function getStepAttempt(db: Queryable, kind: SubjectKind, subjectId: string, step: StepName) {
  const rows = await listStepAttempts(db, kind, subjectId);
  return rows.find((row) => row.step === step) ?? null;
}

export async function listStepAttempts(db: Queryable, kind: SubjectKind, subjectId: string): Promise<StepAttemptRecord[]> {
  const { rows } = await db.query(
    `SELECT step, attempt, total_attempts, rounds, last_attempt_at, first_failure_at, last_error_class, last_error, succeeded_at
       FROM step_attempts WHERE subject_kind = $1 AND subject_id = $2 ORDER BY step`,
    [kind, subjectId],
  );
  return rows.map((row) => ({
    step: row.step,
    attempt: row.attempt,
    totalAttempts: row.total_attempts,
    rounds: row.rounds,
    lastAttemptAt: row.last_attempt_at,
    firstFailureAt: row.first_failure_at,
    lastErrorClass: row.last_error_class,
    lastError: row.last_error,
    succeededAt: row.succeeded_at,
  }));
}

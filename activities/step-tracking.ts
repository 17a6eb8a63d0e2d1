import { Context } from '@temporalio/activity';
import type { ApplicationFailure } from '@temporalio/common';
import type { Pool } from 'pg';
import type { StepName, SubjectKind } from '../domain/types';
import type { SqlParams } from '../db/sql-params';
import {
  attemptSucceededSql, recordAttemptFailure, recordAttemptStart, recordAttemptSuccess, recordFirstAttemptOutcome, type StepAttemptRef,
} from '../db/steps-store';
import { toActivityFailure } from './failures';

/**
 * One running attempt of a step. A step whose last write is a single statement may record the attempt's success in
 * that statement (successSql), which saves a round trip and a commit on the hottest path (every poll).
 */
export class StepAttempt implements StepAttemptRef {
  private folded = false;

  constructor(
    readonly kind: SubjectKind,
    readonly subjectId: string,
    readonly step: StepName,
    readonly attempt: number,
    readonly startedAt: Date,
  ) {}

  /**
   * The success write, as a CTE body for the step's last statement: only for a statement after which the step can
   * no longer fail, since trackStep then records nothing more.
   */
  successSql(params: SqlParams): string {
    this.folded = true;
    return attemptSucceededSql(params, this);
  }

  get successRecorded(): boolean {
    return this.folded;
  }
}

/**
 * Runs one attempt of a step and keeps its try count in PostgreSQL (attempt, last error, last attempt time), so the
 * count is visible in the database as well as in Temporal Web's pending-activity view. A retry is recorded when it
 * starts; a first attempt when it ends (one write: Temporal Web shows it while it runs).
 */
export async function trackStep<T>(
  pool: Pool,
  subject: { kind: SubjectKind; id: string },
  step: StepName,
  run: (attempt: number, tracking: StepAttempt) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  const { attempt } = context.info;
  const tracking = new StepAttempt(subject.kind, subject.id, step, attempt, new Date());
  if (attempt > 1) await recordAttemptStart(pool, subject.kind, subject.id, step, attempt);
  return withHeartbeats(async () => {
    try {
      const result = await run(attempt, tracking);
      if (!tracking.successRecorded) {
        await (attempt > 1
          ? recordAttemptSuccess(pool, tracking)
          : recordFirstAttemptOutcome(pool, tracking, null));
      }
      return result;
    } catch (error) {
      const failure = toActivityFailure(error);
      await recordFailedAttempt(pool, tracking, failure);
      throw failure;
    }
  }, context);
}

/** Records a failed attempt's error class and message (best effort: the failure itself is what must get out). */
export async function recordFailedAttempt(pool: Pool, tracking: StepAttempt, failure: ApplicationFailure): Promise<void> {
  const errorClass = failure.type ?? 'Error';
  await (tracking.attempt > 1
    ? recordAttemptFailure(pool, tracking.kind, tracking.subjectId, tracking.step, errorClass, failure.message)
    : recordFirstAttemptOutcome(pool, tracking, { errorClass, message: failure.message })
  ).catch(() => undefined);
}

/**
 * Heartbeats while `run` runs let Temporal notice a worker that died (SIGKILL, OOM) within the heartbeat timeout
 * instead of the whole start-to-close timeout, so the retry starts within seconds.
 */
export async function withHeartbeats<T>(run: () => Promise<T>, context = Context.current()): Promise<T> {
  const heartbeats = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await run();
  } finally {
    clearInterval(heartbeats);
  }
}

const HEARTBEAT_EVERY_MS = 5_000;

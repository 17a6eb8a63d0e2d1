import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { StepName, SubjectKind } from '../common/types';
import { recordAttemptFailure, recordAttemptStart, recordAttemptSuccess, recordFirstAttemptOutcome } from '../db/steps-store';
import { toActivityFailure } from './failures';

/**
 * Runs one attempt of a step and keeps its try count in PostgreSQL (attempt, last error, last attempt time), so the
 * count is visible in the database as well as in Temporal Web's pending-activity view. A retry is recorded when it
 * starts; a first attempt when it ends (one write: Temporal Web shows it while it runs).
 */
export async function trackStep<T>(
  pool: Pool,
  subject: { kind: SubjectKind; id: string },
  step: StepName,
  run: (attempt: number) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  const { attempt } = context.info;
  const startedAt = new Date();
  if (attempt > 1) await recordAttemptStart(pool, subject.kind, subject.id, step, attempt);
  // Heartbeats while the attempt runs let Temporal notice a worker that died (SIGKILL, OOM) within the heartbeat
  // timeout instead of the whole start-to-close timeout, so the retry starts within seconds.
  const heartbeats = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    const result = await run(attempt);
    if (attempt > 1) await recordAttemptSuccess(pool, subject.kind, subject.id, step);
    else await recordFirstAttemptOutcome(pool, subject.kind, subject.id, step, startedAt, null);
    return result;
  } catch (error) {
    const failure = toActivityFailure(error);
    const errorClass = failure.type ?? 'Error';
    await (attempt > 1
      ? recordAttemptFailure(pool, subject.kind, subject.id, step, errorClass, failure.message)
      : recordFirstAttemptOutcome(pool, subject.kind, subject.id, step, startedAt, { errorClass, message: failure.message })
    ).catch(() => undefined);
    throw failure;
  } finally {
    clearInterval(heartbeats);
  }
}

const HEARTBEAT_EVERY_MS = 5_000;

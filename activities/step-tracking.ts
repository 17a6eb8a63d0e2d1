import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { StepName, SubjectKind } from '../common/types';
import { recordAttemptFailure, recordAttemptStart, recordAttemptSuccess } from '../db/steps-store';
import { toActivityFailure } from './failures';

/**
 * Runs one attempt of a step and keeps its try count in PostgreSQL (attempt, last error, last attempt time), so the
 * count is visible in the database as well as in Temporal Web's pending-activity view.
 */
export async function trackStep<T>(
  pool: Pool,
  subject: { kind: SubjectKind; id: string },
  step: StepName,
  run: (attempt: number) => Promise<T>,
): Promise<T> {
  const context = Context.current();
  const { attempt } = context.info;
  await recordAttemptStart(pool, subject.kind, subject.id, step, attempt);
  // Heartbeats while the attempt runs let Temporal notice a worker that died (SIGKILL, OOM) within the heartbeat
  // timeout instead of the whole start-to-close timeout, so the retry starts within seconds.
  const heartbeats = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    const result = await run(attempt);
    await recordAttemptSuccess(pool, subject.kind, subject.id, step);
    return result;
  } catch (error) {
    const failure = toActivityFailure(error);
    await recordAttemptFailure(pool, subject.kind, subject.id, step, failure.type ?? 'Error', failure.message).catch(() => undefined);
    throw failure;
  } finally {
    clearInterval(heartbeats);
  }
}

const HEARTBEAT_EVERY_MS = 5_000;

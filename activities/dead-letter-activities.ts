import type { DeadLetterInfo, StepName, SubjectKind } from '../domain/types';
import { getBatchForUpdate, markHandlerDispatched, transitionBatch } from '../db/batches-store';
import { getDeadLetter, openDeadLetter, resolveDeadLetter } from '../db/dead-letters-store';
import { getJob, setJobStatus } from '../db/jobs-store';
import { inTransaction } from '../db/pool';
import { getStepAttempt, startNewRound } from '../db/steps-store';
import type { ActivityDeps } from './deps';
import { registered } from './handlers';
import { permanentFailure } from './failures';

/** Activities the workflows call to park a failed step in PostgreSQL and to carry out an operator's decision. */
export function createDeadLetterActivities(deps: ActivityDeps) {
  const { pool } = deps;
  return {
    async recordDeadLetter(input: {
      deadLetterId: string;
      subjectKind: SubjectKind;
      subjectId: string;
      workflowId: string;
      step: StepName;
      errorClass: string;
      errorMessage: string;
      errorStack: string | null;
      nonRetryable: boolean;
    }): Promise<DeadLetterInfo> {
      const attempts = await getStepAttempt(pool, input.subjectKind, input.subjectId, input.step);
      const letter = await openDeadLetter(pool, {
        id: input.deadLetterId,
        subjectKind: input.subjectKind,
        subjectId: input.subjectId,
        workflowId: input.workflowId,
        step: input.step,
        tryCount: Math.max(attempts?.attempt ?? 1, 1),
        errorClass: input.errorClass,
        errorMessage: input.errorMessage,
        errorStack: input.errorStack,
        nonRetryable: input.nonRetryable,
        firstFailureAt: attempts?.firstFailureAt ?? new Date(),
      });
      return {
        deadLetterId: letter.id,
        step: letter.step,
        tryCount: letter.tryCount,
        errorClass: letter.errorClass,
        errorMessage: letter.errorMessage,
        nonRetryable: letter.nonRetryable,
        since: letter.createdAt.toISOString(),
      };
    },

    /** Marks the dead letter resolved; a requeue also starts a fresh try count for the step. Idempotent. */
    async resolveDeadLetterRecord(input: {
      deadLetterId: string; action: 'requeue' | 'discard'; resolvedBy?: string; note?: string;
    }): Promise<void> {
      await inTransaction(pool, async (db) => {
        const letter = await getDeadLetter(db, input.deadLetterId);
        if (!letter) throw permanentFailure('UnknownDeadLetter', `dead letter ${input.deadLetterId} does not exist`);
        const changed = await resolveDeadLetter(db, letter.id, input);
        if (changed && input.action === 'requeue') await startNewRound(db, letter.subjectKind, letter.subjectId, letter.step);
      });
    },

    /** Final failure after a discard: the subject is marked failed and its failure handler told, once. */
    async notifyDiscarded(input: { subjectKind: SubjectKind; subjectId: string; deadLetterId: string }): Promise<void> {
      const letter = await getDeadLetter(pool, input.deadLetterId);
      if (!letter) throw permanentFailure('UnknownDeadLetter', `dead letter ${input.deadLetterId} does not exist`);
      if (input.subjectKind === 'batch') {
        await inTransaction(pool, async (db) => {
          const batch = await getBatchForUpdate(db, input.subjectId);
          if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.subjectId} does not exist`);
          await transitionBatch(db, batch.id, 'failed', 'discarded', {
            failure_code: `discarded_${letter.step}`,
            failure_message: letter.errorMessage.slice(0, 2000),
            failed_at: { raw: 'COALESCE(b.failed_at, now())' },
            ended_at: { raw: 'COALESCE(b.ended_at, now())' },
          }, {}, ['ended', 'canceled', 'expired']); // a discard is the final word, even after the provider ended
          if (batch.handlerDispatchedAt) return;
          const handler = batch.handlerName ? registered(deps.handlers, batch.handlerName) : undefined;
          const fresh = await getBatchForUpdate(db, batch.id);
          if (handler?.onFailure && fresh) await handler.onFailure({ batch: fresh, deadLetter: letter, db });
          await markHandlerDispatched(db, batch.id, 'discarded');
        });
        return;
      }
      const job = await getJob(pool, input.subjectId);
      if (!job) throw permanentFailure('UnknownJob', `job ${input.subjectId} does not exist`);
      if (job.status === 'discarded') return;
      await registered(deps.jobExecutors, job.jobType)?.onFailure?.(job, letter);
      await setJobStatus(pool, job.id, 'discarded', { failureCode: letter.errorClass, failureMessage: letter.errorMessage });
    },
  };
}

export type DeadLetterActivities = ReturnType<typeof createDeadLetterActivities>;

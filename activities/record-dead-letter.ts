import type { DeadLetterInfo, StepName, SubjectKind } from '../domain/types';
import { openDeadLetter } from '../db/dead-letters-store';
import { getStepAttempt } from '../db/steps-store';
import type { ActivityDeps } from './deps';

/** Parks a step that exhausted its attempts (or met a non-retryable error) as a dead letter in PostgreSQL. */
export function createRecordDeadLetter(deps: ActivityDeps) {
  const { pool } = deps;
  return async function recordDeadLetter(input: {
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
  };
}

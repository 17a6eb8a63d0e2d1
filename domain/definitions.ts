/**
 * Signals, queries and updates of batch and job workflows: the one place both workflows and the client import them
 * from, so names can never drift apart.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  BatchWorkflowState,
  JobWorkflowState,
  ResolveDeadLetterInput,
  ResolveDeadLetterResult,
} from './types';

export const batchStateQuery = defineQuery<BatchWorkflowState>('batchState');
export const jobStateQuery = defineQuery<JobWorkflowState>('jobState');

/** Wake the poll loop now instead of at the next scheduled time. */
export const pollNowSignal = defineSignal('pollNow');

/** Cancel at the provider; partial results are collected and the handler told. Returns the status afterwards. */
export const cancelBatchUpdate = defineUpdate<{ status: string }, [{ reason?: string }]>('cancelBatch');

/** Move the deadline later. Returns the new deadline (ISO). */
export const extendDeadlineUpdate = defineUpdate<{ deadlineAt: string }, [{ deadlineAt?: string; byMs?: number }]>(
  'extendDeadline',
);

/** Admin decision for a dead-lettered step (batch or job workflow). */
export const resolveDeadLetterUpdate = defineUpdate<ResolveDeadLetterResult, [ResolveDeadLetterInput]>(
  'resolveDeadLetter',
);

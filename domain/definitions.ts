/**
 * Signals, queries and updates of batch and job workflows: the one place both workflows and the client import them
 * from, so names can never drift apart. Built as plain definitions (what @temporalio/workflow's defineQuery and
 * friends return) so that importing them does not load the workflow package into a client process.
 */
import type { QueryDefinition, SignalDefinition, UpdateDefinition } from '@temporalio/common';
import type {
  BatchWorkflowState,
  JobWorkflowState,
  ResolveDeadLetterInput,
  ResolveDeadLetterResult,
} from './types';

const query = <Ret>(name: string) => ({ type: 'query', name }) as QueryDefinition<Ret>;
const signal = (name: string) => ({ type: 'signal', name }) as SignalDefinition;
const update = <Ret, Args extends unknown[]>(name: string) => ({ type: 'update', name }) as UpdateDefinition<Ret, Args>;

export const batchStateQuery = query<BatchWorkflowState>('batchState');
export const jobStateQuery = query<JobWorkflowState>('jobState');

/** Wake the poll loop now instead of at the next scheduled time. */
export const pollNowSignal = signal('pollNow');

/** Admission capacity freed and this batch's permit was granted: ask again now instead of at the next check. */
export const admissionChangedSignal = signal('admissionChanged');

/** Cancel at the provider; partial results are collected and the handler told. Returns the status afterwards. */
export const cancelBatchUpdate = update<{ status: string }, [{ reason?: string }]>('cancelBatch');

/** Move the deadline later. Returns the new deadline (ISO). */
export const extendDeadlineUpdate = update<{ deadlineAt: string }, [{ deadlineAt?: string; byMs?: number }]>('extendDeadline');

/** Admin decision for a dead-lettered step (batch or job workflow). */
export const resolveDeadLetterUpdate = update<ResolveDeadLetterResult, [ResolveDeadLetterInput]>('resolveDeadLetter');

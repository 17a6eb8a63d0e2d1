/** The "current details" text Temporal Web shows for a running batch or job (markdown). */
import type { BatchWorkflowState, DeadLetterInfo, JobWorkflowState, StepProgress } from '../domain/types';

function stepsLine(steps: Partial<Record<string, StepProgress>>): string {
  const parts = Object.entries(steps).map(([step, progress]) => `${step} ×${progress?.attempt ?? 0}`);
  return parts.length ? parts.join(', ') : '-';
}

function deadLetterLines(letter: DeadLetterInfo | undefined): string[] {
  if (!letter) return [];
  return [
    `**DEAD-LETTERED** at step \`${letter.step}\` after ${letter.tryCount} tries${letter.nonRetryable ? ' (non-retryable)' : ''}`,
    `**${letter.errorClass}:** ${letter.errorMessage}`,
    `Dead letter ${letter.deadLetterId}, since ${letter.since}. Requeue (or discard) with:`,
    '```\nnpx batchkeeper dead-letters requeue\n  ' + letter.deadLetterId + '\n```',
  ];
}

export function describeBatch(state: BatchWorkflowState): string {
  const counts = state.counts;
  const lastError = Object.values(state.steps).find((step) => step?.lastError)?.lastError;
  return [
    `**Status:** ${state.status} (${state.phase})`,
    counts
      ? `Requests: ${counts.total} total, ${counts.processing} processing, ${counts.succeeded} succeeded, ${counts.errored} errored, ${counts.expired} expired, ${counts.canceled} canceled`
      : undefined,
    state.summary
      ? `Stored results: ${state.summary.succeeded} succeeded, ${state.summary.errored} errored, ${state.summary.expired} expired, ${state.summary.canceled} canceled, ${state.summary.missing} missing`
      : undefined,
    state.round && state.round > 1 ? `Round ${state.round} (failed requests resubmitted)` : undefined,
    state.requestsDeadLettered ? `Requests dead-lettered after their last attempt: ${state.requestsDeadLettered}` : undefined,
    typeof state.summary?.costUsd === 'number' ? `Cost: $${state.summary.costUsd.toFixed(4)} (batch price)` : undefined,
    `Polls: ${state.pollCount}${state.nextPollAt && state.phase === 'polling' ? `, next at ${state.nextPollAt}` : ''}`,
    state.deadlineAt ? `Deadline: ${state.deadlineAt}` : undefined,
    `Tries: ${stepsLine(state.steps)}`,
    lastError && !state.deadLetter ? `Last error: ${lastError}` : undefined,
    ...deadLetterLines(state.deadLetter),
  ].filter((line): line is string => Boolean(line)).join('\n\n');
}

export function describeJob(state: JobWorkflowState): string {
  const lastError = Object.values(state.steps).find((step) => step?.lastError)?.lastError;
  return [
    `**Status:** ${state.status} (${state.phase})`,
    `Type: ${state.jobType}`,
    `Tries: ${stepsLine(state.steps)}`,
    lastError && !state.deadLetter ? `Last error: ${lastError}` : undefined,
    ...deadLetterLines(state.deadLetter),
  ].filter((line): line is string => Boolean(line)).join('\n\n');
}

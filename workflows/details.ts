/** The "current details" text Temporal Web shows for a running batch or job (markdown). */
import { deadLetterCommands } from '../domain/operator-commands';
import type { BatchWorkflowState, DeadLetterInfo, JobWorkflowState, StepProgress, SubjectKind } from '../domain/types';

function stepsLine(steps: Partial<Record<string, StepProgress>>): string {
  const parts = Object.entries(steps).map(([step, progress]) => `${step} ×${progress?.attempt ?? 0}`);
  return parts.length ? parts.join(', ') : '-';
}

/**
 * A parked step comes first, with the two commands that resolve it, each complete on one line of its own code block
 * so that it is visible without scrolling and runs as pasted.
 */
function deadLetterLines(letter: DeadLetterInfo | undefined, kind: SubjectKind, subjectId: string): string[] {
  if (!letter) return [];
  const commands = deadLetterCommands(kind, subjectId);
  const ends = kind === 'batch' ? 'the batch ends failed and its handler\'s onFailure runs' : 'the job ends discarded and its executor\'s onFailure runs';
  return [
    `**DEAD-LETTERED** at step \`${letter.step}\` after ${letter.tryCount} tries${letter.nonRetryable ? ' (non-retryable)' : ''}. Requeue (the step runs again with a fresh try count):`,
    '```\n' + commands.requeue + '\n```',
    `Or discard (${ends}):`,
    '```\n' + commands.discard + '\n```',
    `**${letter.errorClass}:** ${letter.errorMessage}`,
    `Dead letter ${letter.deadLetterId}, since ${letter.since}.`,
  ];
}

function formatInterval(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** Why a batch waits in `queued`, and how its provider refused it before (admission control). */
function admissionLines(state: BatchWorkflowState): string[] {
  const admission = state.admission;
  if (!admission) return [];
  const lines: string[] = [];
  if (state.status === 'queued') {
    const where = admission.position !== undefined ? `position ${admission.position} in the queue of budget ${admission.budget}` : 'backing off after a queue-limit refusal';
    const size = admission.estimatedTokens !== undefined ? `, about ${admission.estimatedTokens} tokens (${admission.estimator})` : '';
    lines.push(`**Queued for admission:** ${where}${size}; since ${admission.queuedSince ?? '-'}, next check ${admission.nextCheckAt ?? '-'}`);
  }
  if (admission.refusals > 0) lines.push(`Queue-limit refusals by the provider: ${admission.refusals}${admission.lastRefusal ? ` (last: ${admission.lastRefusal})` : ''}`);
  return lines;
}

export function describeBatch(state: BatchWorkflowState): string {
  const counts = state.counts;
  const lastError = Object.values(state.steps).find((step) => step?.lastError)?.lastError;
  return [
    ...deadLetterLines(state.deadLetter, 'batch', state.batchId),
    `**Status:** ${state.status} (${state.phase})`,
    ...admissionLines(state),
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
    state.pollingByRetries && state.phase === 'polling'
      ? `Polling every ${formatInterval(state.pollingByRetries.intervalMs)} on retries of the pollUntilChange activity since ${state.pollingByRetries.since}: ` +
        'its attempts are the polls since then and its last failure is the last status read (Pending Activities); ' +
        'PostgreSQL has the poll count and the next poll time'
      : undefined,
    state.deadlineAt ? `Deadline: ${state.deadlineAt}` : undefined,
    `Tries: ${stepsLine(state.steps)}`,
    lastError && !state.deadLetter ? `Last error: ${lastError}` : undefined,
  ].filter((line): line is string => Boolean(line)).join('\n\n');
}

export function describeJob(state: JobWorkflowState): string {
  const lastError = Object.values(state.steps).find((step) => step?.lastError)?.lastError;
  return [
    ...deadLetterLines(state.deadLetter, 'job', state.jobId),
    `**Status:** ${state.status} (${state.phase})`,
    `Type: ${state.jobType}`,
    `Tries: ${stepsLine(state.steps)}`,
    lastError && !state.deadLetter ? `Last error: ${lastError}` : undefined,
  ].filter((line): line is string => Boolean(line)).join('\n\n');
}

import { Context } from '@temporalio/activity';
import { ApplicationFailure, ApplicationFailureCategory } from '@temporalio/common';
import { isTerminalBatchStatus } from '../domain/statuses';
import type { BatchStatus } from '../domain/types';
import { batchLookup } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { toActivityFailure } from './failures';
import { refreshParts } from './refresh-parts';
import type { StatusView } from './status-view';
import { recordFailedAttempt, StepAttempt, withHeartbeats } from './step-tracking';

export interface PollUntilChangeInput {
  batchId: string;
  /** The status the workflow knows: a poll that reads another one returns. */
  knownStatus: BatchStatus;
  intervalMs: number;
  /** The batch's deadline (ISO): the last poll is made at it, then control goes back to the workflow. */
  deadlineAt: string;
  /**
   * When the first poll is due (ISO): the first attempt only schedules it, so the workflow needs no timer. Null: poll
   * at once (a poll-now, which is never late). Later polls are planned by the poll before them.
   */
  firstPollAt: string | null;
  /** Return after this many polls even when nothing changed (continue-as-new in tests and benchmarks). */
  maxPolls?: number;
}

export type PollUntilChangeOutcome = 'changed' | 'deadline' | 'max_polls' | 'poll_failed';

export interface PollUntilChangeResult {
  outcome: PollUntilChangeOutcome;
  /** Successful status reads made by this activity (one per attempt). */
  polls: number;
  /** The last status read; absent when the first poll failed. */
  view?: Omit<StatusView, 'attempt'>;
  /** The poll step's try count: each poll here is a first attempt (a failed one goes to the regular poll step). */
  attempt: 1;
}

/** The benign failure that schedules the next poll: Temporal retries the activity after `nextRetryDelay`. */
export const STILL_RUNNING = 'BatchStillRunning';

/**
 * The steady part of a batch's poll schedule, polled on Temporal's activity retries instead of workflow timers (the
 * "infrequent polling" pattern). Each attempt reads the status once and records it in PostgreSQL; while nothing
 * changed it fails with a benign BatchStillRunning whose nextRetryDelay is the poll interval, so the server starts the
 * next attempt at the next poll time and the workflow is not woken in between: no workflow task per poll, so a worker
 * whose cache holds a small share of its open batches replays none of them to poll. Temporal Web's pending activity
 * shows the polls made (attempt) and the last status read (last failure).
 *
 * It returns as soon as the workflow has something to do: the status changed (ended, or moved on), the deadline came,
 * `maxPolls` polls were made, or a poll failed. A poll that failed retryably is not retried here: the workflow runs its
 * regular poll step at once, with the poll step's retry policy and try count. A refusal (non-retryable) fails the
 * activity, and the workflow parks the step as a dead letter.
 */
export function createPollUntilChange(deps: ActivityDeps) {
  const lookup = batchLookup(deps);
  return async function pollUntilChange(input: PollUntilChangeInput): Promise<PollUntilChangeResult> {
    const context = Context.current();
    const { attempt, scheduledTimestampMs } = context.info;
    // Whether attempt 1 waits for the first poll is decided from what every attempt sees alike (when the activity was
    // scheduled), so each attempt knows how many polls came before it.
    const firstPollAt = input.firstPollAt === null ? null : Date.parse(input.firstPollAt);
    const waitsFirst = firstPollAt !== null && firstPollAt - scheduledTimestampMs > FIRST_POLL_SLACK_MS;
    if (waitsFirst && attempt === 1) throw stillRunning(`first poll at ${input.firstPollAt}`, firstPollAt - Date.now());
    const polls = waitsFirst ? attempt - 1 : attempt;
    const tracking = new StepAttempt('batch', input.batchId, 'poll', 1, new Date());
    let view: Omit<StatusView, 'attempt'>;
    let nextPollAt: number;
    try {
      ({ view, nextPollAt } = await withHeartbeats(async () => {
        const { batch, parts } = await lookup.batchWithParts(input.batchId);
        const provider = lookup.provider(batch);
        const plannedAt = polls === 1 ? firstPollAt : batch.nextPollAt?.getTime() ?? null;
        if (plannedAt !== null) deps.metrics?.pollLateness(batch.provider, Date.now() - plannedAt);
        const next = Math.min(Date.now() + input.intervalMs, Date.parse(input.deadlineAt));
        const read = await refreshParts(deps.pool, batch, parts, new Date(next).toISOString(), (id) => provider.getStatus(id), tracking);
        return { view: read, nextPollAt: next };
      }, context));
    } catch (error) {
      const failure = toActivityFailure(error);
      await recordFailedAttempt(deps.pool, tracking, failure);
      if (failure.nonRetryable) throw failure; // a refusal no retry fixes: the workflow parks the step
      context.log.warn('Poll failed; the regular poll step takes over', { error: failure });
      return { outcome: 'poll_failed', polls: polls - 1, attempt: 1 };
    }
    const now = Date.now();
    if (view.status !== input.knownStatus || isTerminalBatchStatus(view.status)) return { outcome: 'changed', polls, view, attempt: 1 };
    if (now >= Date.parse(input.deadlineAt)) return { outcome: 'deadline', polls, view, attempt: 1 };
    if (input.maxPolls !== undefined && polls >= input.maxPolls) return { outcome: 'max_polls', polls, view, attempt: 1 };
    const { counts } = view;
    const done = counts.total - counts.processing;
    throw stillRunning(
      `batch ${view.status} at the provider (${done}/${counts.total} requests done) after ${polls} polls here; next poll at ${new Date(nextPollAt).toISOString()}`,
      nextPollAt - now,
    );
  };
}

/** A first poll planned this much after the activity was scheduled is waited for by attempt 1 (no timer). */
const FIRST_POLL_SLACK_MS = 50;

function stillRunning(message: string, delayMs: number): ApplicationFailure {
  return ApplicationFailure.create({
    type: STILL_RUNNING, message, nextRetryDelay: Math.max(Math.round(delayMs), 1), category: ApplicationFailureCategory.BENIGN,
  });
}

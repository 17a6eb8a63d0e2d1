/**
 * One LLM provider batch as a durable workflow: submit once, poll on durable timers following the schedule, enforce
 * the deadline, fetch results into PostgreSQL, then dispatch the completion handler. The workflow carries ids,
 * statuses and counts only; bodies stay in PostgreSQL.
 *
 * Histories of this code are recorded in test/fixtures/histories and must keep replaying: a change to what it
 * commands needs patched() (or a new workflow type).
 */
import type { SearchAttributeUpdatePair } from '@temporalio/common';
import {
  allHandlersFinished, CancellationScope, condition, continueAsNew, isCancellation, patched, proxyActivities,
  setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { Activities, PollUntilChangeResult, StatusView } from '../activities';
import { DEFAULT_ADMISSION, queueLimitBackoffMs } from '../domain/admission';
import {
  admissionChangedSignal, batchStateQuery, cancelBatchUpdate, extendDeadlineUpdate, pollNowSignal,
} from '../domain/definitions';
import { DEADLINE, STATUS, TRY_COUNT } from '../domain/search-attributes';
import { nextWakeMs, pollDelayMs } from '../domain/poll-schedule';
import { isTerminalBatchStatus } from '../domain/statuses';
import type { BatchWorkflowInput, BatchWorkflowResult, BatchWorkflowState, DeadLetterInfo, RetrySettings } from '../domain/types';
import { describeBatch } from './details';
import { bookkeeping, StepRunner } from './step-runner';

/** Every step heartbeats (activities/step-tracking.ts), so a dead worker's attempt is retried within 30 s. */
const TIMEOUTS = {
  submit: { startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds' },
  poll: { startToCloseTimeout: '2 minutes', heartbeatTimeout: '30 seconds' },
  cancel: { startToCloseTimeout: '2 minutes', heartbeatTimeout: '30 seconds' },
  fetch_results: { startToCloseTimeout: '1 hour', heartbeatTimeout: '30 seconds' },
  dispatch_handler: { startToCloseTimeout: '15 minutes', heartbeatTimeout: '30 seconds' },
  complete_stragglers: { startToCloseTimeout: '1 hour', heartbeatTimeout: '30 seconds' },
  delete_files: { startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds' },
} as const;

/** The straggler fallback (a batch's `stragglers` policy); batches without one record no marker. */
const STRAGGLER_FALLBACK = 'straggler-fallback';

/**
 * Runs recorded before the provider-file deletion step replay without it; new runs of providers with files record
 * this marker (Anthropic batches, which have none, record no marker and run no step).
 */
const DELETE_PROVIDER_FILES = 'delete-provider-files';

const DEFAULT_CANCEL_GRACE_MS = 10 * 60_000;
/** Runs recorded before polls moved to activity retries replay on workflow timers. */
const POLL_BY_ACTIVITY_RETRIES = 'poll-by-activity-retries';
/** Runs recorded before a discarded poll or cancel dead letter marked the batch failed replay without it. */
const NOTIFY_DISCARDED_POLLS = 'notify-discarded-polls';
/**
 * Admission control (domain/admission.ts): a budgeted batch asks for a permit before each round is submitted and
 * waits in `queued` until it gets one; a round the provider refuses for a full queue goes back to waiting with
 * backoff instead of failing. Runs recorded before it replay without it.
 */
const ADMISSION_CONTROL = 'admission-control';
/** The first ask of a round estimates its tokens over every request (a 50,000-request round: seconds), heartbeating. */
const admission = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});
/** Longest poll interval while waiting for a cancelled batch to settle (the schedule's first entry if shorter). */
const MAX_SETTLE_POLL_MS = 30_000;

/** Started for every batch as BATCH_WORKFLOW_TYPE (domain/workflow-ids.ts). */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchWorkflowResult> {
  const { batchId } = input;
  const state: BatchWorkflowState = input.carried?.state ?? {
    batchId, phase: 'submitting', status: 'pending', pollCount: 0, steps: {}, cancelRequested: false,
  };
  let pollNowRequested = false;
  let admissionWoken = false;
  let discardedLetterId: string | undefined;
  let cancelSent = false;
  let wakeVersion = 0;
  // What Temporal Web shows: the start options (or the run continued from) set the status; deadlines come later.
  const shown = { status: state.status, deadlineAt: input.carried?.state.deadlineAt };

  const runner = new StepRunner({ subjectKind: 'batch', subjectId: batchId, changed: () => refresh() });
  function refresh(): void {
    state.steps = { ...state.steps, ...runner.steps } as BatchWorkflowState['steps'];
    state.deadLetter = runner.deadLetter;
    if (runner.deadLetter) state.phase = 'dead_lettered';
    const changes: SearchAttributeUpdatePair[] = [];
    if (state.status !== shown.status) {
      shown.status = state.status;
      changes.push({ key: STATUS, value: state.status });
    }
    if (state.deadlineAt && state.deadlineAt !== shown.deadlineAt) {
      shown.deadlineAt = state.deadlineAt;
      changes.push({ key: DEADLINE, value: new Date(state.deadlineAt) });
    }
    if (changes.length > 0) upsertSearchAttributes(changes);
    setCurrentDetails(describeBatch(state));
  }

  setHandler(batchStateQuery, () => state);
  setHandler(pollNowSignal, () => {
    pollNowRequested = true;
  });
  setHandler(admissionChangedSignal, () => {
    admissionWoken = true;
  });
  setHandler(
    cancelBatchUpdate,
    async (_request) => {
      state.cancelRequested = true;
      wakeVersion += 1;
      await condition(() => cancelSent || isTerminalBatchStatus(state.status) || state.phase === 'done');
      return { status: state.status };
    },
    {
      validator: (_request) => {
        if (isTerminalBatchStatus(state.status) || state.phase === 'done') {
          throw new Error(`batch ${batchId} is already ${state.status}: nothing to cancel`);
        }
      },
    },
  );
  setHandler(
    extendDeadlineUpdate,
    async (request) => {
      const deadlineAt = new Date(request.deadlineAt ?? Date.parse(state.deadlineAt!) + request.byMs!).toISOString();
      await bookkeeping.recordDeadline({ batchId, deadlineAt });
      state.deadlineAt = deadlineAt;
      wakeVersion += 1;
      refresh();
      return { deadlineAt };
    },
    {
      validator: (request) => {
        if (!state.deadlineAt || isTerminalBatchStatus(state.status) || state.phase === 'done') {
          throw new Error(`batch ${batchId} has no running deadline to extend (status ${state.status})`);
        }
        const current = Date.parse(state.deadlineAt);
        const next = request.deadlineAt !== undefined ? Date.parse(request.deadlineAt) : current + (request.byMs ?? NaN);
        if (!Number.isFinite(next)) throw new Error('give deadlineAt (ISO time) or byMs (positive number)');
        if (next <= current) throw new Error(`new deadline must be later than the current one (${state.deadlineAt})`);
      },
    },
  );

  const plan = input.carried?.plan ?? (await bookkeeping.loadBatchPlan({ batchId }));
  if (!input.carried) {
    state.status = plan.status;
    state.providerBatchId = plan.providerBatchId ?? undefined;
    state.deadlineAt = plan.deadlineAt ?? undefined;
    refresh();
  }
  if (plan.handlerDispatched) {
    await deleteProviderFiles();
    return finish();
  }

  const stragglers = plan.stragglers && patched(STRAGGLER_FALLBACK) ? plan.stragglers : undefined;
  /** When the requests still unanswered go through the synchronous API (afterMs from submission; first round only). */
  const stragglersDueMs = (): number | undefined =>
    stragglers?.afterMs !== undefined && plan.submittedAt && (state.round ?? 1) === 1 && !cancelSent
      ? Date.parse(plan.submittedAt) + stragglers.afterMs : undefined;
  let expiredAtDeadline = false;
  let lastPoll: StatusView | undefined;
  let stragglersCut = false;
  const settlePollMs = Math.min(MAX_SETTLE_POLL_MS, pollDelayMs(plan.pollScheduleMs, 0));
  // Rounds: submit, poll, store results; then requests that failed retryably go round again while they may.
  for (let roundInRun = 1; ; roundInRun += 1) {
    // Submissions of this round: one, plus one more each time the provider refuses it for a full queue.
    for (let submission = 1; ; submission += 1) {
      let queueLimited: StatusView['queueLimited'];
      // 0. Admission: budgeted batches, and any batch back in the queue after a refusal.
      let withdrawn = false;
      if ((!state.providerBatchId || state.status === 'pending' || state.status === 'queued')
        && (plan.admission?.budgeted || state.status === 'queued') && patched(ADMISSION_CONTROL)) {
        const admitted = await admit();
        if (admitted === 'continue') {
          // Long in the queue: a fresh history, as the poll loop does.
          await condition(allHandlersFinished);
          return continueAsNew<typeof batchWorkflow>({ ...input, carried: { plan, state, pollIndex: 0 } });
        }
        if (admitted === 'canceled') {
          // Canceled while queued: nothing more is sent. Parts already at the provider (a round refused in part)
          // are canceled there by the poll loop below; with none, the results step ends the batch canceled.
          const { liveParts } = await bookkeeping.withdrawAdmission({ batchId });
          if (liveParts === 0) {
            cancelSent = true;
            break;
          }
          state.status = 'in_progress';
          withdrawn = true;
        }
      }
      // 1. Submit (skipped when the provider batches already exist, e.g. a run resumed by the sweep).
      if (!withdrawn && (!state.providerBatchId || state.status === 'pending' || state.status === 'queued')) {
        state.phase = 'submitting';
        const submitted = await runner.run('submit', plan.retry.submit, TIMEOUTS.submit, (a) => a.submitBatch({ batchId }));
        if (!submitted.ok) return discard(submitted.deadLetter.deadLetterId);
        if (submitted.value.queueLimited && patched(ADMISSION_CONTROL)) {
          await requeue(submitted.value.queueLimited);
          continue;
        }
        state.providerBatchId = submitted.value.providerBatchId;
        state.deadlineAt = submitted.value.deadlineAt;
        if (stragglers) plan.submittedAt ??= new Date().toISOString();
        applyStatus(submitted.value);
      }

      // 2. Poll (workflow timers, then activity retries) until terminal, the deadline or the stragglers' time.
      if (!plan.resultsFetched) {
        let pollIndex = roundInRun === 1 && submission === 1 ? input.carried?.pollIndex ?? 0 : 0;
        let pollsThisRun = 0;
        state.phase = 'polling';
        while (!isTerminalBatchStatus(state.status)) {
          if (state.cancelRequested && !cancelSent) {
            const canceled = await cancel('canceled by operator');
            if (!canceled) return discardParked();
            continue;
          }
          const deadlineMs = Date.parse(state.deadlineAt!);
          // Once a cancel was sent, the provider settles within minutes: poll at the settle interval, not the schedule's.
          const delay = pollDelayMs(plan.pollScheduleMs, pollIndex);
          const stragglersAt = stragglersDueMs();
          // The last poll comes at the deadline, or when the stragglers are due if that is sooner.
          const cutMs = stragglersAt !== undefined ? Math.min(deadlineMs, stragglersAt) : deadlineMs;
          const wakeAt = nextWakeMs(Date.now(), cancelSent ? Math.min(delay, settlePollMs) : delay, cutMs);
          let pastDeadline: boolean;
          let stragglersNow: boolean;
          // The schedule's last interval repeats until the batch ends: from there on, polls run on activity retries.
          if (!cancelSent && Date.now() < cutMs && pollIndex >= plan.pollScheduleMs.length - 1 && patched(POLL_BY_ACTIVITY_RETRIES)) {
            const maxPolls = input.continueAsNewAfterPolls ? Math.max(input.continueAsNewAfterPolls - pollsThisRun, 1) : undefined;
            // A poll-now asked while the workflow was busy is made at once, and is not late.
            const firstPoll = pollNowRequested ? null : new Date(wakeAt).toISOString();
            pollNowRequested = false;
            const waited = await pollUntilChange(delay, firstPoll, maxPolls, new Date(cutMs).toISOString());
            pollIndex += waited.polls;
            pollsThisRun += waited.polls;
            if (waited.outcome === 'discarded') return discardParked();
            if (waited.outcome === 'woken') continue; // poll-now, cancel or a new deadline: plan again
            if (waited.outcome === 'poll_failed') {
              // The regular poll step takes over at once, with its retry policy, try count and dead letter.
              if (!(await poll(new Date(Date.now() + pollDelayMs(plan.pollScheduleMs, pollIndex + 1))))) return discardParked();
              pollIndex += 1;
              pollsThisRun += 1;
            }
            pastDeadline = Date.now() >= Date.parse(state.deadlineAt!);
            stragglersNow = stragglersAt !== undefined && !pastDeadline && Date.now() >= stragglersAt;
          } else {
            state.nextPollAt = new Date(wakeAt).toISOString();
            refresh();
            const version = wakeVersion;
            await condition(() => pollNowRequested || wakeVersion !== version, Math.max(wakeAt - Date.now(), 0));
            if (wakeVersion !== version && !pollNowRequested) continue; // deadline moved or cancel asked: plan again
            // A poll on its timer is measured against the time planned for it (poll lateness); a poll-now is not late.
            const plannedAt = pollNowRequested ? null : state.nextPollAt!;
            pollNowRequested = false;

            pastDeadline = Date.now() >= Date.parse(state.deadlineAt!);
            stragglersNow = stragglersAt !== undefined && !pastDeadline && Date.now() >= stragglersAt;
            const nextPlanned = pastDeadline || stragglersNow ? null : new Date(Date.now() + pollDelayMs(plan.pollScheduleMs, pollIndex + 1));
            const polled = await poll(nextPlanned, plannedAt);
            if (!polled) return discardParked();
            pollIndex += 1;
            pollsThisRun += 1;
          }
          if (isTerminalBatchStatus(state.status)) break;

          if (pastDeadline || stragglersNow) {
            // Deadline: the status read above was the last one; cancel, let the provider settle, keep partial results.
            // Stragglers due: the same, and the requests left unanswered then go through the synchronous API.
            expiredAtDeadline = pastDeadline;
            stragglersCut = stragglersNow;
            const why = pastDeadline ? 'deadline exceeded' : 'stragglers sent synchronously';
            if (!cancelSent && !(await cancel(why))) return discardParked();
            const settleUntil = Date.now() + (input.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS);
            while (!isTerminalBatchStatus(state.status) && Date.now() < settleUntil) {
              await condition(() => pollNowRequested, Math.max(Math.min(settlePollMs, settleUntil - Date.now()), 0));
              pollNowRequested = false;
              if (!(await poll(null))) return discardParked();
            }
            break;
          }

          const suggested = workflowInfo().continueAsNewSuggested;
          if (suggested || (input.continueAsNewAfterPolls && pollsThisRun >= input.continueAsNewAfterPolls)) {
            await condition(allHandlersFinished);
            return continueAsNew<typeof batchWorkflow>({ ...input, carried: { plan, state, pollIndex } });
          }
        }
        queueLimited = lastPoll?.queueLimited;
      }

      // A part failed for a full queue (token_limit_exceeded): once all parts settled, the round waits and goes again.
      if (queueLimited && !expiredAtDeadline && !cancelSent && patched(ADMISSION_CONTROL)) {
        await requeue(queueLimited);
        continue;
      }
      break;
    }

    // 3. Results into PostgreSQL (partial ones too), then 4. the completion handler.
    if (!plan.resultsFetched) {
      state.phase = 'fetching_results';
      refresh();
      // Our own cancel decides the final status: some providers (Anthropic) report a cancelled batch as just ended.
      const operatorCanceled = !expiredAtDeadline && !stragglersCut && cancelSent;
      const finalStatus = expiredAtDeadline ? 'expired' : operatorCanceled ? 'canceled' : undefined;
      const reason = expiredAtDeadline ? 'deadline exceeded' : operatorCanceled ? 'canceled by operator' : undefined;
      const fetched = await runner.run('fetch_results', plan.retry.fetch_results, TIMEOUTS.fetch_results, (a) =>
        a.fetchResults({ batchId, finalStatus, reason }),
      );
      if (!fetched.ok) return discard(fetched.deadLetter.deadLetterId);
      const { attempt: _attempt, status, ...summary } = fetched.value;
      state.summary = summary;
      state.status = status;
    }

    // 3b. The straggler fallback: what the provider left unanswered goes through its synchronous API.
    if (stragglersCut || (expiredAtDeadline && stragglers?.atDeadline)) {
      const fromRound = state.round ?? 1;
      const completed = await runner.run('complete_stragglers', plan.retry.complete_stragglers ?? plan.retry.fetch_results,
        TIMEOUTS.complete_stragglers, (a) => a.completeStragglers({ batchId, fromRound, ...(stragglersCut ? { finalStatus: 'ended' as const } : {}) }));
      if (!completed.ok) return discard(completed.deadLetter.deadLetterId);
      const { attempt: _attempt, status, synchronous: _synchronous, round, ...summary } = completed.value;
      if (round !== fromRound) state.round = round;
      state.summary = summary;
      state.status = status;
      break;
    }

    // 5. Resubmission of retryably failed, expired and missing requests (not after our own cancel or deadline).
    if (expiredAtDeadline || state.cancelRequested) break;
    const resubmission = await bookkeeping.planResubmission({ batchId });
    state.requestsDeadLettered = (state.requestsDeadLettered ?? 0) + resubmission.deadLettered;
    if (resubmission.resubmitted === 0) break;
    state.round = resubmission.round;
    state.status = 'pending';
    plan.resultsFetched = false;
    refresh();
  }
  state.phase = 'dispatching';
  refresh();
  const dispatched = await runner.run('dispatch_handler', plan.retry.dispatch_handler, TIMEOUTS.dispatch_handler, (a) =>
    a.dispatchHandler({ batchId }),
  );
  if (!dispatched.ok) return discard(dispatched.deadLetter.deadLetterId);
  await deleteProviderFiles();
  return finish();

  /**
   * Asks for the round's permit until it is granted (woken by a release's signal, else at the check interval the
   * activity names). Returns 'canceled' when an operator canceled the batch while it waited, 'continue' when the
   * history grew long enough that Temporal suggests continuing as new.
   */
  async function admit(): Promise<'admitted' | 'canceled' | 'continue'> {
    for (;;) {
      if (state.cancelRequested) return 'canceled';
      if (workflowInfo().continueAsNewSuggested) return 'continue';
      admissionWoken = false;
      const decision = await admission.admitBatch({ batchId });
      const refusals = { refusals: state.admission?.refusals ?? 0, ...(state.admission?.lastRefusal ? { lastRefusal: state.admission.lastRefusal } : {}) };
      if (decision.admitted) {
        state.status = decision.status;
        state.admission = refusals.refusals > 0 || decision.budget ? { ...refusals, ...(decision.budget ? { budget: decision.budget } : {}) } : undefined;
        refresh();
        return 'admitted';
      }
      state.status = 'queued';
      state.phase = 'queued';
      state.admission = {
        ...refusals,
        ...(decision.position !== undefined ? { position: decision.position } : {}),
        ...(decision.budget ? { budget: decision.budget } : {}),
        ...(decision.estimatedTokens !== undefined ? { estimatedTokens: decision.estimatedTokens, estimator: decision.estimator } : {}),
        queuedSince: state.admission?.queuedSince ?? new Date().toISOString(),
        nextCheckAt: new Date(Date.now() + decision.retryAfterMs).toISOString(),
      };
      refresh();
      await condition(() => admissionWoken || state.cancelRequested, decision.retryAfterMs);
    }
  }

  /** The provider refused the round for a full queue: back to `queued`, not asked again before the backoff. */
  async function requeue(refusal: { code: string; message: string }): Promise<void> {
    lastPoll = undefined;
    const refusals = (state.admission?.refusals ?? 0) + 1;
    const waitMs = queueLimitBackoffMs(plan.admission?.queueLimitBackoff ?? DEFAULT_ADMISSION.queueLimitBackoff, refusals);
    const notBefore = new Date(Date.now() + waitMs).toISOString();
    await bookkeeping.requeueRefusedBatch({ batchId, notBefore, refusal });
    state.status = 'queued';
    state.phase = 'queued';
    state.admission = { refusals, lastRefusal: `${refusal.code}: ${refusal.message}`, queuedSince: new Date().toISOString(), nextCheckAt: notBefore };
    refresh();
    // With a budget the permit itself waits until notBefore; without one the workflow sleeps here.
    if (!plan.admission?.budgeted) await condition(() => state.cancelRequested, waitMs);
  }

  /**
   * 6. The provider's copies of the files (input, output, error) go once results are stored and the handler ran.
   * A dead letter here is requeued or discarded like any other; discarding leaves the files and never fails the batch.
   */
  async function deleteProviderFiles(): Promise<void> {
    if (!plan.deletesProviderFiles || !patched(DELETE_PROVIDER_FILES)) return;
    await runner.run('delete_files', plan.retry.delete_files ?? plan.retry.fetch_results, TIMEOUTS.delete_files, (a) =>
      a.deleteProviderFiles({ batchId }),
    );
  }

  function applyStatus(view: Pick<StatusView, 'status' | 'counts'>): void {
    state.status = view.status;
    state.counts = view.counts;
    refresh();
  }

  async function poll(nextPollAt: Date | null, plannedAt: string | null = null): Promise<boolean> {
    const polled = await runner.run('poll', plan.retry.poll, TIMEOUTS.poll, (a) =>
      a.pollBatch({ batchId, nextPollAt: nextPollAt?.toISOString() ?? null, ...(plannedAt ? { plannedAt } : {}) }),
    );
    if (!polled.ok) return parked(polled.deadLetter);
    lastPoll = polled.value;
    state.pollCount += 1;
    applyStatus(polled.value);
    return true;
  }

  /**
   * Polls every `intervalMs` on retries of one activity (activities/poll-until-change.ts), the first at `firstPollAt`
   * (null: now), until the status changes, `lastPollAt` (the deadline, or the stragglers' time) comes or a poll fails; a poll-now, a cancel or a new deadline
   * wakes the workflow first, cancelling the activity between two polls. No timer and no workflow task per poll.
   */
  async function pollUntilChange(
    intervalMs: number, firstPollAt: string | null, maxPolls: number | undefined, lastPollAt: string,
  ): Promise<{ outcome: PollUntilChangeResult['outcome'] | 'woken' | 'discarded'; polls: number }> {
    const version = wakeVersion;
    state.nextPollAt = undefined;
    state.pollingByRetries = { intervalMs, since: firstPollAt ?? new Date().toISOString() };
    refresh();
    // Each retry is a poll, scheduled by the activity's nextRetryDelay; the policy applies only when an attempt dies
    // with its worker (heartbeat timeout): it is made again at once, then at most once per interval. A provider's
    // refusal (non-retryable) parks the step as a dead letter like a regular poll's.
    const retry: RetrySettings = { maximumAttempts: 0, initialIntervalMs: 1000, backoffCoefficient: 2, maximumIntervalMs: Math.max(intervalMs, 1000) };
    const scope = new CancellationScope();
    const waiting = scope.run(() => runner.run('poll', retry, TIMEOUTS.poll, (a) => a.pollUntilChange({
      batchId, knownStatus: state.status, intervalMs, deadlineAt: lastPollAt, firstPollAt, ...(maxPolls ? { maxPolls } : {}),
    })));
    // Woken between two polls, never while a dead letter is being recorded or waits for its operator.
    const woken = scope.run(() => condition(() => (pollNowRequested || wakeVersion !== version) && !runner.parking)).then(() => true, () => false);
    let outcome: Awaited<typeof waiting> | undefined;
    try {
      outcome = await Promise.race([waiting, woken.then(() => undefined)]);
      if (outcome === undefined) {
        scope.cancel();
        outcome = await waiting; // it may have returned in the same activation
      }
    } catch (error) {
      if (!isCancellation(error)) throw error;
    } finally {
      scope.cancel();
      state.pollingByRetries = undefined;
    }
    if (!outcome) return { outcome: 'woken', polls: 0 };
    if (!outcome.ok) {
      parked(outcome.deadLetter);
      return { outcome: 'discarded', polls: 0 };
    }
    const result = outcome.value;
    state.pollCount += result.polls;
    if (result.view) lastPoll = { ...result.view, attempt: 1 };
    if (result.view) applyStatus(result.view);
    else refresh();
    return { outcome: result.outcome, polls: result.polls };
  }

  async function cancel(reason: string): Promise<boolean> {
    state.phase = 'canceling';
    const canceled = await runner.run('cancel', plan.retry.cancel, TIMEOUTS.cancel, (a) => a.cancelAtProvider({ batchId, reason }));
    cancelSent = true;
    if (!canceled.ok) return parked(canceled.deadLetter);
    state.phase = 'polling';
    applyStatus(canceled.value);
    return true;
  }

  /** Keeps the id of a dead letter the operator discarded (the runner forgets it once resolved). */
  function parked(letter: DeadLetterInfo): false {
    discardedLetterId = letter.deadLetterId;
    return false;
  }

  /**
   * Ends the batch after a discard at poll or cancel. Runs recorded before the fix returned here without marking the
   * batch failed in PostgreSQL or telling its handler (the letter's id was lost); they replay that way.
   */
  function discardParked(): Promise<BatchWorkflowResult> {
    const letterId = runner.deadLetter?.deadLetterId ?? (discardedLetterId && patched(NOTIFY_DISCARDED_POLLS) ? discardedLetterId : undefined);
    return discard(letterId);
  }

  async function discard(deadLetterId: string | undefined): Promise<BatchWorkflowResult> {
    if (deadLetterId) await bookkeeping.notifyDiscarded({ subjectKind: 'batch', subjectId: batchId, deadLetterId });
    state.status = 'failed';
    upsertSearchAttributes([{ key: TRY_COUNT, value: null }]);
    return finish(true);
  }

  async function finish(discarded = false): Promise<BatchWorkflowResult> {
    state.phase = 'done';
    state.nextPollAt = undefined;
    refresh();
    await condition(allHandlersFinished);
    return { batchId, status: state.status, summary: state.summary, ...(discarded ? { discarded } : {}) };
  }
}

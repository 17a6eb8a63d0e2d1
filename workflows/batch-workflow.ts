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
  allHandlersFinished, condition, continueAsNew, patched, setCurrentDetails, setHandler, upsertSearchAttributes, workflowInfo,
} from '@temporalio/workflow';
import type { StatusView } from '../activities';
import {
  batchStateQuery, cancelBatchUpdate, extendDeadlineUpdate, pollNowSignal,
} from '../domain/definitions';
import { DEADLINE, STATUS, TRY_COUNT } from '../domain/search-attributes';
import { nextWakeMs, pollDelayMs } from '../domain/poll-schedule';
import { isTerminalBatchStatus } from '../domain/statuses';
import type { BatchWorkflowInput, BatchWorkflowResult, BatchWorkflowState } from '../domain/types';
import { describeBatch } from './details';
import { bookkeeping, StepRunner } from './step-runner';

/** Every step heartbeats (activities/step-tracking.ts), so a dead worker's attempt is retried within 30 s. */
const TIMEOUTS = {
  submit: { startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds' },
  poll: { startToCloseTimeout: '2 minutes', heartbeatTimeout: '30 seconds' },
  cancel: { startToCloseTimeout: '2 minutes', heartbeatTimeout: '30 seconds' },
  fetch_results: { startToCloseTimeout: '1 hour', heartbeatTimeout: '30 seconds' },
  dispatch_handler: { startToCloseTimeout: '15 minutes', heartbeatTimeout: '30 seconds' },
  delete_files: { startToCloseTimeout: '10 minutes', heartbeatTimeout: '30 seconds' },
} as const;

/**
 * Runs recorded before the provider-file deletion step replay without it; new runs of providers with files record
 * this marker (Anthropic batches, which have none, record no marker and run no step).
 */
const DELETE_PROVIDER_FILES = 'delete-provider-files';

const DEFAULT_CANCEL_GRACE_MS = 10 * 60_000;
/** Longest poll interval while waiting for a cancelled batch to settle (the schedule's first entry if shorter). */
const MAX_SETTLE_POLL_MS = 30_000;

/** Started for every batch as BATCH_WORKFLOW_TYPE (domain/workflow-ids.ts). */
export async function batchWorkflow(input: BatchWorkflowInput): Promise<BatchWorkflowResult> {
  const { batchId } = input;
  const state: BatchWorkflowState = input.carried?.state ?? {
    batchId, phase: 'submitting', status: 'pending', pollCount: 0, steps: {}, cancelRequested: false,
  };
  let pollNowRequested = false;
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

  let expiredAtDeadline = false;
  const settlePollMs = Math.min(MAX_SETTLE_POLL_MS, pollDelayMs(plan.pollScheduleMs, 0));
  // Rounds: submit, poll, store results; then requests that failed retryably go round again while they may.
  for (let roundInRun = 1; ; roundInRun += 1) {
    // 1. Submit (skipped when the provider batches already exist, e.g. a run resumed by the sweep).
    if (!state.providerBatchId || state.status === 'pending') {
      state.phase = 'submitting';
      const submitted = await runner.run('submit', plan.retry.submit, TIMEOUTS.submit, (a) => a.submitBatch({ batchId }));
      if (!submitted.ok) return discard(submitted.deadLetter.deadLetterId);
      state.providerBatchId = submitted.value.providerBatchId;
      state.deadlineAt = submitted.value.deadlineAt;
      applyStatus(submitted.value);
    }

    // 2. Poll on durable timers until terminal or past the deadline.
    if (!plan.resultsFetched) {
      let pollIndex = roundInRun === 1 ? input.carried?.pollIndex ?? 0 : 0;
      let pollsThisRun = 0;
      state.phase = 'polling';
      while (!isTerminalBatchStatus(state.status)) {
        if (state.cancelRequested && !cancelSent) {
          const canceled = await cancel('canceled by operator');
          if (!canceled) return discard(runner.deadLetter?.deadLetterId);
          continue;
        }
        const deadlineMs = Date.parse(state.deadlineAt!);
        // Once a cancel was sent, the provider settles within minutes: poll at the settle interval, not the schedule's.
        const delay = pollDelayMs(plan.pollScheduleMs, pollIndex);
        const wakeAt = nextWakeMs(Date.now(), cancelSent ? Math.min(delay, settlePollMs) : delay, deadlineMs);
        state.nextPollAt = new Date(wakeAt).toISOString();
        refresh();
        const version = wakeVersion;
        await condition(() => pollNowRequested || wakeVersion !== version, Math.max(wakeAt - Date.now(), 0));
        if (wakeVersion !== version && !pollNowRequested) continue; // deadline moved or cancel asked: plan again
        // A poll on its timer is measured against the time planned for it (poll lateness); a poll-now is not late.
        const plannedAt = pollNowRequested ? null : state.nextPollAt!;
        pollNowRequested = false;

        const pastDeadline = Date.now() >= Date.parse(state.deadlineAt!);
        const nextPlanned = pastDeadline ? null : new Date(Date.now() + pollDelayMs(plan.pollScheduleMs, pollIndex + 1));
        const polled = await poll(nextPlanned, plannedAt);
        if (!polled) return discard(runner.deadLetter?.deadLetterId);
        pollIndex += 1;
        pollsThisRun += 1;
        if (isTerminalBatchStatus(state.status)) break;

        if (pastDeadline) {
          // Deadline: the status read above was the last one; cancel, let the provider settle, keep partial results.
          expiredAtDeadline = true;
          if (!cancelSent && !(await cancel('deadline exceeded'))) return discard(runner.deadLetter?.deadLetterId);
          const settleUntil = Date.now() + (input.cancelGraceMs ?? DEFAULT_CANCEL_GRACE_MS);
          while (!isTerminalBatchStatus(state.status) && Date.now() < settleUntil) {
            await condition(() => pollNowRequested, Math.max(Math.min(settlePollMs, settleUntil - Date.now()), 0));
            pollNowRequested = false;
            if (!(await poll(null))) return discard(runner.deadLetter?.deadLetterId);
          }
          break;
        }

        const suggested = workflowInfo().continueAsNewSuggested;
        if (suggested || (input.continueAsNewAfterPolls && pollsThisRun >= input.continueAsNewAfterPolls)) {
          await condition(allHandlersFinished);
          return continueAsNew<typeof batchWorkflow>({ ...input, carried: { plan, state, pollIndex } });
        }
      }
    }

    // 3. Results into PostgreSQL (partial ones too), then 4. the completion handler.
    if (!plan.resultsFetched) {
      state.phase = 'fetching_results';
      refresh();
      // Our own cancel decides the final status: some providers (Anthropic) report a cancelled batch as just ended.
      const operatorCanceled = !expiredAtDeadline && cancelSent;
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
    if (!polled.ok) return false;
    state.pollCount += 1;
    applyStatus(polled.value);
    return true;
  }

  async function cancel(reason: string): Promise<boolean> {
    state.phase = 'canceling';
    const canceled = await runner.run('cancel', plan.retry.cancel, TIMEOUTS.cancel, (a) => a.cancelAtProvider({ batchId, reason }));
    cancelSent = true;
    if (!canceled.ok) return false;
    state.phase = 'polling';
    applyStatus(canceled.value);
    return true;
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

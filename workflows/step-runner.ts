/**
 * Runs a workflow step as an activity under its retry policy. When the step exhausts its attempts or meets a
 * non-retryable error, the step is dead-lettered: recorded in PostgreSQL, shown in Temporal Web, and the workflow
 * waits for an operator to requeue (fresh try count, optionally new retry settings) or discard it.
 */
import {
  ActivityFailure, ApplicationFailure, condition, isCancellation, patched, proxyActivities, setHandler, upsertSearchAttributes,
  uuid4, workflowInfo, type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { resolveDeadLetterUpdate } from '../domain/definitions';
import { DEAD_LETTERED, FAILED_STEP, TRY_COUNT } from '../domain/search-attributes';
import type {
  DeadLetterInfo, ResolveDeadLetterInput, RetrySettings, StepName, StepProgress, SubjectKind,
} from '../domain/types';

const TRY_COUNT_ON_RETRIED_SUCCESS = 'try-count-on-retried-success';

/** Bookkeeping in PostgreSQL must outlast a database outage, so it retries without limit. */
export const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export function toRetryPolicy(settings: RetrySettings): ActivityOptions['retry'] {
  return {
    maximumAttempts: settings.maximumAttempts === 0 ? undefined : settings.maximumAttempts, // 0: no limit
    initialInterval: settings.initialIntervalMs,
    backoffCoefficient: settings.backoffCoefficient,
    maximumInterval: settings.maximumIntervalMs,
  };
}

export type StepOutcome<T> = { ok: true; value: T } | { ok: false; deadLetter: DeadLetterInfo };

export interface StepRunnerHost {
  subjectKind: SubjectKind;
  subjectId: string;
  /** Called whenever try counts or the dead letter change, to refresh state and Temporal Web details. */
  changed(): void;
}

export class StepRunner {
  readonly steps: Partial<Record<StepName, StepProgress>> = {};
  deadLetter?: DeadLetterInfo;
  /** Id of the dead letter being recorded: an operator may see it in PostgreSQL before the workflow hears back. */
  private parkingId?: string;
  private decision?: ResolveDeadLetterInput;

  constructor(private readonly host: StepRunnerHost) {
    setHandler(
      resolveDeadLetterUpdate,
      async (input) => {
        await condition(() => this.deadLetter !== undefined);
        const open = this.deadLetter!;
        await bookkeeping.resolveDeadLetterRecord({
          deadLetterId: open.deadLetterId, action: input.action, resolvedBy: input.resolvedBy, note: input.note,
        });
        this.decision = input;
        return { deadLetterId: open.deadLetterId, action: input.action };
      },
      {
        validator: (input) => {
          const openId = this.deadLetter?.deadLetterId ?? this.parkingId;
          if (!openId || this.decision) {
            throw new Error(`${host.subjectKind} ${host.subjectId} is not dead-lettered: nothing to requeue or discard`);
          }
          if (input.action !== 'requeue' && input.action !== 'discard') {
            throw new Error(`action must be 'requeue' or 'discard' (got ${JSON.stringify(input.action)})`);
          }
          if (input.deadLetterId && input.deadLetterId !== openId) {
            throw new Error(`dead letter ${input.deadLetterId} is not the open one (${openId})`);
          }
        },
      },
    );
  }

  /**
   * Runs `call` with activity options built from the step's retry settings, dead-lettering on final failure.
   * A requeue runs the step again; a discard returns { ok: false }.
   */
  async run<T extends { attempt?: number }>(
    step: StepName,
    retry: RetrySettings,
    timeouts: Omit<ActivityOptions, 'retry'>,
    call: (activities: Activities) => Promise<T>,
  ): Promise<StepOutcome<T>> {
    let settings = retry;
    for (;;) {
      const activities = proxyActivities<Activities>({ ...timeouts, retry: toRetryPolicy(settings) });
      try {
        const value = await call(activities);
        const attempt = value.attempt ?? 1;
        this.steps[step] = { attempt };
        // A step that needed retries shows its try count in visibility ("jobs that needed retries"). Runs recorded
        // before this carry no marker and replay without the upsert; the marker is written only when it applies.
        if (attempt > 1 && patched(TRY_COUNT_ON_RETRIED_SUCCESS)) upsertSearchAttributes([{ key: TRY_COUNT, value: attempt }]);
        this.host.changed();
        return { ok: true, value };
      } catch (error) {
        // A cancelled step (the caller's scope) is the caller's to handle, not a failure to park.
        if (isCancellation(error) || !(error instanceof ActivityFailure)) throw error;
        const decision = await this.park(step, error);
        if (decision.action === 'discard') return { ok: false, deadLetter: this.resolved() };
        settings = { ...settings, ...decision.retry };
        this.resolved();
      }
    }
  }

  private async park(step: StepName, error: ActivityFailure): Promise<ResolveDeadLetterInput> {
    const cause = error.cause;
    const errorClass = cause instanceof ApplicationFailure ? cause.type ?? 'ApplicationFailure' : cause?.name ?? 'ActivityFailure';
    this.parkingId = uuid4();
    this.deadLetter = await bookkeeping.recordDeadLetter({
      deadLetterId: this.parkingId,
      subjectKind: this.host.subjectKind,
      subjectId: this.host.subjectId,
      workflowId: workflowInfo().workflowId,
      step,
      errorClass,
      errorMessage: cause?.message ?? error.message,
      errorStack: cause?.stack ?? null,
      nonRetryable: cause instanceof ApplicationFailure ? Boolean(cause.nonRetryable) : false,
    });
    this.steps[step] = { attempt: this.deadLetter.tryCount, lastError: `${errorClass}: ${this.deadLetter.errorMessage}` };
    upsertSearchAttributes([
      { key: DEAD_LETTERED, value: true },
      { key: FAILED_STEP, value: step },
      { key: TRY_COUNT, value: this.deadLetter.tryCount },
    ]);
    this.host.changed();
    await condition(() => this.decision !== undefined);
    return this.decision!;
  }

  /** A step is being dead-lettered or waits parked for its operator's decision. */
  get parking(): boolean {
    return this.parkingId !== undefined;
  }

  /** Clears the parked state after a decision; returns the dead letter that was resolved. */
  private resolved(): DeadLetterInfo {
    const letter = this.deadLetter!;
    this.deadLetter = undefined;
    this.parkingId = undefined;
    this.decision = undefined;
    upsertSearchAttributes([
      { key: DEAD_LETTERED, value: false },
      { key: FAILED_STEP, value: null },
    ]);
    this.host.changed();
    return letter;
  }
}

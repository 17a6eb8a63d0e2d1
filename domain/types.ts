/**
 * Types shared by workflows, activities and the client. Only small values: ids, statuses, counts and timestamps.
 * Request and result bodies never appear here because everything here may end up in a Temporal history.
 */

import type { AdmissionPlan } from './admission';
import type { BatchStatus, JobStatus } from './statuses';

export type { BatchOutcome, BatchStatus, JobStatus, RequestStatus } from './statuses';

export type SubjectKind = 'batch' | 'job';
export type BatchStep = 'submit' | 'poll' | 'cancel' | 'fetch_results' | 'complete_stragglers' | 'dispatch_handler' | 'delete_files';

/**
 * The straggler fallback of a batch (off unless given): at the deadline (`atDeadline`) and/or after `afterMs` in
 * progress, the requests the provider has not answered are sent through its synchronous API, at most
 * `maxRequestsPerSecond` a second (default 5), and the handler sees them with the batch's own results.
 */
export interface StragglerPolicy {
  afterMs?: number;
  atDeadline?: boolean;
  maxRequestsPerSecond?: number;
}
export type JobStep = 'execute' | 'notify_failure';
export type StepName = BatchStep | JobStep;

/** Temporal activity retry settings, in milliseconds so they serialise plainly. */
export interface RetrySettings {
  /** Total attempts including the first; the step is dead-lettered after this many. 0 (internal only): no limit. */
  maximumAttempts: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
}

export interface RequestCounts {
  total: number;
  processing: number;
  succeeded: number;
  errored: number;
  expired: number;
  canceled: number;
}

/** Per-request outcome counts after results were stored. */
export interface ResultSummary {
  succeeded: number;
  errored: number;
  expired: number;
  canceled: number;
  missing: number;
  /** Result lines whose custom id was never submitted (ignored). */
  unknownIds: number;
  /** Lines that could not be parsed (their request, when identifiable, is marked errored). */
  malformedLines: number;
  /** Further lines for a request that already had one (ignored). */
  duplicateLines: number;
  /** Priced from the worker's price table with the batch discount; null when the model has no price. */
  costUsd?: number | null;
  /** Requests that failed retryably after their last allowed submission. */
  deadLetteredRequests?: number;
}

export interface DeadLetterInfo {
  deadLetterId: string;
  step: StepName;
  tryCount: number;
  errorClass: string;
  errorMessage: string;
  nonRetryable: boolean;
  since: string;
}

export interface StepProgress {
  attempt: number;
  lastError?: string;
}

/** What the batch workflow answers to the `batchState` query and shows in Temporal Web. */
export interface BatchWorkflowState {
  batchId: string;
  phase: 'queued' | 'submitting' | 'polling' | 'canceling' | 'fetching_results' | 'dispatching' | 'dead_lettered' | 'done';
  status: BatchStatus;
  providerBatchId?: string;
  pollCount: number;
  /** When the next poll is due while polls run on workflow timers. */
  nextPollAt?: string;
  /**
   * Set while polls run on retries of one activity (the schedule's repeating last interval): the workflow then hears
   * of polls only when the status changes, so pollCount lags and PostgreSQL has the current count and next poll.
   */
  pollingByRetries?: { intervalMs: number; /** The first of these polls (ISO). */ since: string };
  deadlineAt?: string;
  counts?: RequestCounts;
  summary?: ResultSummary;
  steps: Partial<Record<BatchStep, StepProgress>>;
  deadLetter?: DeadLetterInfo;
  cancelRequested: boolean;
  /** Submission round (1, then one per resubmission of failed requests). */
  round?: number;
  /** Requests dead-lettered after their last allowed submission. */
  requestsDeadLettered?: number;
  /** Admission control: while queued, why and where; refusals of the provider for a full queue, over all rounds. */
  admission?: AdmissionState;
}

export interface AdmissionState {
  /** Place in its budget's queue (1: next); absent while backing off without a budget. */
  position?: number;
  /** provider/model (or provider/*) of the budget. */
  budget?: string;
  estimatedTokens?: number;
  estimator?: string;
  queuedSince?: string;
  nextCheckAt?: string;
  /** Queue-limit refusals by the provider (token_limit_exceeded and the like). */
  refusals: number;
  lastRefusal?: string;
}

export interface JobWorkflowState {
  jobId: string;
  jobType: string;
  phase: 'running' | 'dead_lettered' | 'done';
  status: JobStatus;
  steps: Partial<Record<JobStep, StepProgress>>;
  deadLetter?: DeadLetterInfo;
}

export interface ResolveDeadLetterInput {
  action: 'requeue' | 'discard';
  /** Must match the open dead letter, so a stale decision cannot hit a later one. */
  deadLetterId?: string;
  /** New retry settings for the requeued step. */
  retry?: Partial<RetrySettings>;
  resolvedBy?: string;
  note?: string;
}

export interface ResolveDeadLetterResult {
  deadLetterId: string;
  action: 'requeue' | 'discard';
}

/** What the batch workflow needs to run (or resume) a batch; ids, timestamps and settings only. */
export interface BatchPlan {
  batchId: string;
  provider: string;
  model: string;
  handlerName: string | null;
  requestCount: number;
  status: BatchStatus;
  providerBatchId: string | null;
  pollScheduleMs: number[];
  maxAgeMs: number;
  deadlineAt: string | null;
  resultsFetched: boolean;
  handlerDispatched: boolean;
  /**
   * The worker's adapter deletes provider files (OpenAI, xAI, Gemini with deletion on): the workflow then runs the
   * delete_files step after the handler. Absent in plans recorded before the step existed.
   */
  deletesProviderFiles?: boolean;
  retry: Record<BatchStep, RetrySettings>;
  /** Absent in plans recorded before the straggler fallback existed. */
  stragglers?: StragglerPolicy | null;
  submittedAt?: string | null;
  /** Admission control for this batch (absent in plans loaded before it existed: no admission). */
  admission?: AdmissionPlan;
}

/** What the job workflow needs to run a job. */
export interface JobPlan {
  jobId: string;
  jobType: string;
  done: boolean;
  retry: Record<JobStep, RetrySettings>;
}

export interface BatchWorkflowInput {
  batchId: string;
  /** After this many polls in one run, continue as new even before Temporal suggests it (tests and benchmarks). */
  continueAsNewAfterPolls?: number;
  /** How long to keep polling for the provider to settle after a deadline cancel. Default 10 minutes. */
  cancelGraceMs?: number;
  /** State carried across continue-as-new. */
  carried?: { plan: BatchPlan; state: BatchWorkflowState; pollIndex: number };
}

export interface BatchWorkflowResult {
  batchId: string;
  status: BatchStatus;
  summary?: ResultSummary;
  discarded?: boolean;
}

export interface JobWorkflowInput {
  jobId: string;
}

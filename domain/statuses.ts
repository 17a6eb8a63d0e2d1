/**
 * The status vocabularies of batches, provider batches, requests and jobs: written once here. SQL that needs a set
 * of them takes it as a parameter (`status = ANY($n::text[])`), so the database and the code can never disagree.
 */

/**
 * `queued`: waiting for admission (domain/admission.ts): over its provider/model budget, or backing off after the
 * provider refused it for a full queue. It is pending again once admitted.
 */
export const BATCH_STATUSES = ['pending', 'queued', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** A batch in one of these is finished at the provider: it is never polled again and its status never changes. */
export const TERMINAL_BATCH_STATUSES = ['ended', 'canceled', 'expired', 'failed'] as const satisfies readonly BatchStatus[];
export type TerminalBatchStatus = (typeof TERMINAL_BATCH_STATUSES)[number];

export function isTerminalBatchStatus(status: string): status is TerminalBatchStatus {
  return (TERMINAL_BATCH_STATUSES as readonly string[]).includes(status);
}

/** How a batch ended, as told to its completion handler. */
export type BatchOutcome = TerminalBatchStatus;

/** Statuses a provider batch (one part of a logical batch) reports, normalised across providers. */
export const PROVIDER_BATCH_STATUSES = ['submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed'] as const satisfies readonly BatchStatus[];
export type ProviderBatchStatus = (typeof PROVIDER_BATCH_STATUSES)[number];

export const REQUEST_STATUSES = ['pending', 'succeeded', 'errored', 'expired', 'canceled', 'missing'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/**
 * Request outcomes that a follow-up round may resend: expired and missing always, errored when the provider marked
 * it retryable (checked apart, since it needs the row's `retryable` flag).
 */
export const RESENDABLE_REQUEST_STATUSES = ['expired', 'missing'] as const satisfies readonly RequestStatus[];

export const JOB_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'discarded'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** A job in one of these is over: its executor never runs again. */
export const FINAL_JOB_STATUSES = ['succeeded', 'failed', 'discarded'] as const satisfies readonly JobStatus[];

export function isFinalJobStatus(status: string): boolean {
  return (FINAL_JOB_STATUSES as readonly string[]).includes(status);
}

/** Behaviour knobs of the fake provider: timing, per-request outcomes and per-batch rules. */

/** OpenAI-compatible variants serve the OpenAI routes under their own path prefix (openai-variants.ts). */
export type OpenAIVariantName = 'groq' | 'together' | 'mistral' | 'azure' | 'oddball';
export type ProviderName = 'openai' | 'anthropic' | 'gemini' | 'xai' | OpenAIVariantName;

/**
 * What happens to one request, chosen by custom id:
 * - succeeded: a plausible completion/message echoing the custom id (default)
 * - errored: retryable server error (OpenAI HTTP 500 line; Anthropic `api_error`)
 * - invalid: permanent error (OpenAI HTTP 400 line; Anthropic `invalid_request_error`)
 * - expired: the request expired (OpenAI `batch_expired` error line; Anthropic `expired`)
 * - missing: no result line at all
 * - malformed: a broken JSON line that still contains `"custom_id":"<id>"`
 */
export type RequestOutcome = 'succeeded' | 'errored' | 'invalid' | 'expired' | 'missing' | 'malformed';
export const REQUEST_OUTCOMES: readonly RequestOutcome[] = ['succeeded', 'errored', 'invalid', 'expired', 'missing', 'malformed'];

/** An outcome forever, or only for the next `times` batches that contain the custom id (then succeeded). */
export type OutcomeSpec = RequestOutcome | { outcome: RequestOutcome; times: number };

/**
 * Batch-level outcome:
 * - normal: requests follow their own outcomes
 * - failed: OpenAI → status `failed` after validation with `errors.data`; Anthropic (which has no failed state) →
 *   `ended` after the validation period with every request `errored` (`api_error`, retryable); Gemini →
 *   `BATCH_STATE_FAILED`; xAI → `cancel_by_xai_message` (file validation failed)
 * - rejected: the create call itself returns HTTP 400 invalid_request_error and nothing is created (both providers)
 * - queue_limited: refused for a full queue, as `queueLimits` refuses it (see there)
 */
export type BatchOutcome = 'normal' | 'failed' | 'rejected' | 'queue_limited';

/**
 * Enqueued limits per provider and model, as the providers keep them: the tokens (one per 4 characters of each
 * request's JSON params) and requests of that provider's and model's batches still running. A new batch over them
 * is refused: OpenAI and its variants create it and fail it at validation with `token_limit_exceeded` in
 * errors.data; Anthropic answers the create with 429 `rate_limit_error` (the queue of requests in processing is
 * full); Gemini with 429 `RESOURCE_EXHAUSTED` (enqueued tokens). xAI has no such limit here.
 */
export interface QueueLimit {
  provider: ProviderName;
  /** Every model of the provider when absent (each counted on its own). */
  model?: string;
  maxEnqueuedTokens?: number;
  maxRequests?: number;
}

export interface BatchTiming {
  /** Time from create to completion; requests are processed evenly between 10% and 90% of it. */
  processingMs?: number;
  /** Expire the batch this long after creation (null/undefined: never). */
  expireAfterMs?: number | null;
  /** Fail the batch this long after creation, keeping what was processed (null/undefined: never). */
  failAfterMs?: number | null;
  /** How long `cancelling`/`canceling` lasts before the batch is cancelled/ended. */
  cancelDelayMs?: number;
}

/** Applies to batches created later whose contents match; first matching rule wins. */
export interface BatchRule extends BatchTiming {
  match?: {
    provider?: ProviderName;
    /** The batch contains a request with this custom id. */
    customId?: string;
    /** OpenAI metadata.batchkeeper_batch_id. */
    batchkeeperBatchId?: string;
    model?: string;
  };
  outcome?: BatchOutcome;
  /** Apply to this many batches, then drop the rule. Default: unlimited. */
  times?: number;
}

export interface FakeConfig {
  processingMs: number;
  cancelDelayMs: number;
  expireAfterMs: number | null;
  /** Shuffle result lines (seeded by batch id) so callers cannot rely on order. Default true. */
  shuffleResults: boolean;
  /**
   * Keep each ended batch's result file once rendered and serve that copy afterwards, as a provider serves a stored
   * file. Off by default; the benchmark turns it on so rendering a 100 MB file does not count against the worker
   * that downloads it on the same cores.
   */
  keepResultFiles: boolean;
  batchRules: BatchRule[];
  queueLimits: QueueLimit[];
}

export function defaultConfig(processingMs = 300): FakeConfig {
  return { processingMs, cancelDelayMs: 50, expireAfterMs: null, shuffleResults: true, keepResultFiles: false, batchRules: [], queueLimits: [] };
}

/**
 * Admission control: how many tokens, requests and provider batches each provider (and model) may have enqueued at
 * once, as the worker is configured (BATCHKEEPER_ADMISSION), and how a batch backs off after a provider refused it
 * for a full queue. Values and pure rules only: permits live in PostgreSQL (db/admissions-store.ts).
 */

/** Limits of one budget; an absent limit is not checked. */
export interface AdmissionBudget {
  /** Estimated prompt tokens of the admitted (not yet ended) batches (OpenAI: "enqueued tokens" per model). */
  maxEnqueuedTokens?: number;
  /** Requests of the admitted batches (Anthropic: the queue of requests in processing). */
  maxRequests?: number;
  /** Provider batches open at once (Gemini: concurrent batch jobs). */
  maxOpenBatches?: number;
}

export interface AdmissionConfig {
  /**
   * Budgets by provider, then model. The model `*` makes one budget that every model of the provider shares
   * (Anthropic's queue is shared across models); a model listed by name has its own (OpenAI's limits are per model).
   */
  budgets: Record<string, Record<string, AdmissionBudget>>;
  /** How often a queued batch asks again when no release wakes it first. */
  recheckMs: number;
  /** Backoff after a queue-limit refusal: first wait, doubled per refusal of the same round, up to the maximum. */
  queueLimitBackoff: { initialMs: number; maxMs: number };
}

export const DEFAULT_ADMISSION: AdmissionConfig = Object.freeze({
  budgets: {},
  recheckMs: 30_000,
  queueLimitBackoff: Object.freeze({ initialMs: 60_000, maxMs: 30 * 60_000 }),
}) as AdmissionConfig;

/** The budget a batch of provider/model falls under, with the model key its permit is counted under. */
export function budgetFor(config: AdmissionConfig | undefined, provider: string, model: string): { model: string; budget: AdmissionBudget } | null {
  const models = config?.budgets[provider];
  if (!models) return null;
  if (models[model]) return { model, budget: models[model] };
  if (models['*']) return { model: '*', budget: models['*'] };
  return null;
}

/** Wait before asking again after the `failures`-th queue-limit refusal (1 = the first). */
export function queueLimitBackoffMs(backoff: { initialMs: number; maxMs: number }, failures: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
}

/**
 * Provider error codes that mean "your queue is full, try later", not "this batch is wrong": OpenAI (and Azure)
 * fail such a batch at validation with `token_limit_exceeded` in errors.data (also `request_limit_exceeded` for the
 * enqueued-request cap); the adapters classify Anthropic's and Gemini's 429 queue refusals on create as
 * `queue_limit_exceeded` (providers/classify-error.ts).
 */
export const QUEUE_LIMIT_CODES: readonly string[] = ['token_limit_exceeded', 'request_limit_exceeded', 'queue_limit_exceeded'];

export function isQueueLimitCode(code: string | null | undefined): boolean {
  return code !== null && code !== undefined && QUEUE_LIMIT_CODES.includes(code);
}

/** What the workflow needs to know of admission for one batch (part of its plan). */
export interface AdmissionPlan {
  /** A budget applies: every round asks for a permit before it is submitted. */
  budgeted: boolean;
  recheckMs: number;
  queueLimitBackoff: { initialMs: number; maxMs: number };
}

import { KNOWN_PROVIDER_LIMITS, lookupLimits, MAX_LOGICAL_REQUESTS, type ProviderLimitsTable } from '../domain/provider-limits';
import { validateRetrySettings as checkRetrySettings } from '../domain/retry-policy';
import { DEFAULT_MAX_AGE_MS } from '../domain/poll-schedule';
import type { StragglerPolicy } from '../domain/types';
import type { NewRequest } from '../db/requests-store';
import { ValidationError } from './errors';
import { requireStorableJson, requireStorableText, storableJson } from './validate-text';

/** What an app passes to submitBatch. */
export interface SubmitBatchInput {
  provider: string;
  model: string;
  /** Provider-native request bodies without the model, each with an id unique within the batch. */
  requests: { customId: string; params: Record<string, unknown> }[];
  /** Completion handler registered on the worker; omit for none. */
  handler?: string;
  /** Small JSON for the handler; never sent to the provider. */
  metadata?: Record<string, unknown>;
  /** Submitting twice with the same key returns the same batch. Defaults to a fresh key. */
  idempotencyKey?: string;
  /** Delays between polls in ms; each used once, the last repeating. Default 60s, 2m, 5m, 10m, 30m. */
  pollScheduleMs?: number[];
  /** Deadline measured from submission. Default 26 hours. */
  maxAgeMs?: number;
  /**
   * Submissions per request: requests that come back retryably errored, expired or missing are resubmitted in a
   * follow-up provider batch until they have been sent this many times. Default 1 (no resubmission).
   */
  maxRequestAttempts?: number;
  /**
   * The straggler fallback (off by default): at the deadline (`atDeadline: true`) and/or after `afterMs` in progress,
   * requests still without an outcome are sent through the provider's synchronous API (OpenAI chat completions,
   * Anthropic messages), at most `maxRequestsPerSecond` a second (default 5), priced at the full rate; the provider
   * batch is cancelled and the handler sees one merged result set.
   */
  stragglers?: StragglerPolicy;
  /**
   * The provider endpoint every request of the batch goes to, e.g. '/v1/responses' or '/v1/embeddings'; one the
   * provider supports (its limits' `endpoints`). Default: the worker's configured endpoint (chat completions).
   */
  endpoint?: string;
}

/** Providers whose adapters have a synchronous API for the straggler fallback. */
export const SYNCHRONOUS_FALLBACK_PROVIDERS: readonly string[] = ['openai', 'anthropic'];

function validateStragglers(stragglers: unknown, provider: string, maxAgeMs: number): void {
  if (!isPlainObject(stragglers)) throw new ValidationError('stragglers', 'must be an object { afterMs?, atDeadline?, maxRequestsPerSecond? }');
  for (const key of Object.keys(stragglers)) {
    if (!['afterMs', 'atDeadline', 'maxRequestsPerSecond'].includes(key)) throw new ValidationError(`stragglers.${key}`, 'is not a straggler setting (afterMs, atDeadline, maxRequestsPerSecond)');
  }
  const { afterMs, atDeadline, maxRequestsPerSecond } = stragglers;
  if (afterMs !== undefined && (typeof afterMs !== 'number' || !Number.isInteger(afterMs) || afterMs < 1000 || afterMs >= maxAgeMs)) {
    throw new ValidationError('stragglers.afterMs', `must be an integer of at least 1000 ms and less than the max age (${maxAgeMs} ms)`);
  }
  if (atDeadline !== undefined && typeof atDeadline !== 'boolean') throw new ValidationError('stragglers.atDeadline', 'must be true or false');
  if (afterMs === undefined && atDeadline !== true) throw new ValidationError('stragglers', 'needs afterMs or atDeadline: true (when to send the stragglers)');
  if (maxRequestsPerSecond !== undefined && (typeof maxRequestsPerSecond !== 'number' || !Number.isFinite(maxRequestsPerSecond) || maxRequestsPerSecond <= 0 || maxRequestsPerSecond > 1000)) {
    throw new ValidationError('stragglers.maxRequestsPerSecond', 'must be a number above 0 and at most 1000');
  }
  if (!SYNCHRONOUS_FALLBACK_PROVIDERS.includes(provider)) {
    throw new ValidationError('stragglers', `provider ${provider} has no synchronous API batchkeeper can fall back to (${SYNCHRONOUS_FALLBACK_PROVIDERS.join(', ')} have)`);
  }
}

const MAX_METADATA_BYTES = 16 * 1024;
const NAME_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/** A submission that passed validation; each request carries its params as the JSON text to store. */
export interface ValidSubmitBatch extends Omit<SubmitBatchInput, 'requests'> {
  requests: NewRequest[];
}

/**
 * Rejects bad input with a ValidationError naming the field. Runs before any write, so a rejected submission leaves
 * nothing behind.
 */
export function validateSubmitBatch(
  input: unknown,
  options: { handlers?: readonly string[]; providerLimits?: ProviderLimitsTable } = {},
): ValidSubmitBatch {
  if (!isPlainObject(input)) throw new ValidationError('input', 'must be an object');
  const { provider, model, requests, handler, metadata, idempotencyKey, pollScheduleMs, maxAgeMs, maxRequestAttempts, stragglers, endpoint } = input;

  if (typeof provider !== 'string') throw new ValidationError('provider', 'must be a string');
  const table = options.providerLimits ?? KNOWN_PROVIDER_LIMITS;
  const limits = lookupLimits(table, provider);
  if (!limits) throw new ValidationError('provider', `unknown provider ${JSON.stringify(provider)}; known: ${Object.keys(table).join(', ')}`);
  if (endpoint !== undefined) {
    if (typeof endpoint !== 'string') throw new ValidationError('endpoint', 'must be a string such as "/v1/responses"');
    if (!limits.endpoints || limits.endpoints.length === 0) {
      throw new ValidationError('endpoint', `${provider} takes one kind of request only; omit endpoint`);
    }
    if (!limits.endpoints.includes(endpoint)) {
      throw new ValidationError('endpoint', `${JSON.stringify(endpoint)} is not an endpoint ${provider} batches support; supported: ${limits.endpoints.join(', ')}`);
    }
  }
  if (typeof model !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(model)) {
    throw new ValidationError('model', 'must be a non-empty model name of printable characters (at most 200)');
  }
  if (!Array.isArray(requests)) throw new ValidationError('requests', 'must be an array');
  if (requests.length === 0) throw new ValidationError('requests', 'must not be empty');
  if (requests.length > MAX_LOGICAL_REQUESTS) {
    throw new ValidationError('requests', `${requests.length} requests exceed the limit of ${MAX_LOGICAL_REQUESTS} per logical batch`);
  }
  const seen = new Set<string>();
  const validRequests: NewRequest[] = [];
  requests.forEach((request, index) => {
    const where = `requests[${index}]`;
    if (!isPlainObject(request)) throw new ValidationError(where, 'must be an object with customId and params');
    if (typeof request.customId !== 'string') throw new ValidationError(`${where}.customId`, 'must be a string');
    // Ids a provider would refuse are mapped at submission; here only what no provider could carry is refused.
    if (!/^[^\x00-\x1f\x7f]{1,256}$/u.test(request.customId)) {
      throw new ValidationError(`${where}.customId`, 'must be 1-256 characters without control characters');
    }
    // Results are joined back by this id: it must be stored exactly as given, or the app could not find its result.
    requireStorableText(request.customId, `${where}.customId`);
    if (seen.has(request.customId)) throw new ValidationError(`${where}.customId`, `duplicate custom id ${JSON.stringify(request.customId)}`);
    seen.add(request.customId);
    if (!isPlainObject(request.params)) throw new ValidationError(`${where}.params`, 'must be an object (the provider request body)');
    if ('model' in request.params && request.params.model !== model) {
      throw new ValidationError(`${where}.params.model`, `differs from the batch model ${JSON.stringify(model)}; one model per batch`);
    }
    const { json, bytes } = storableJson(request.params, `${where}.params`);
    // A single request must fit in one provider batch; the batch as a whole is split as needed.
    if (bytes > limits.maxBytes) {
      throw new ValidationError(`${where}.params`, `${bytes} bytes exceed ${provider}'s limit of ${limits.maxBytes} bytes per batch`);
    }
    validRequests.push({ customId: request.customId, params: request.params, paramsJson: json });
  });
  if (handler !== undefined) {
    if (typeof handler !== 'string' || !NAME_PATTERN.test(handler)) {
      throw new ValidationError('handler', 'must be a name of 1-100 characters of [A-Za-z0-9_.:-]');
    }
    if (options.handlers && !options.handlers.includes(handler)) {
      throw new ValidationError('handler', `unknown handler ${JSON.stringify(handler)}; registered: ${options.handlers.join(', ') || 'none'}`);
    }
  }
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) throw new ValidationError('metadata', 'must be a plain JSON object');
    if (requireStorableJson(metadata, 'metadata') > MAX_METADATA_BYTES) throw new ValidationError('metadata', `must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
  }
  if (idempotencyKey !== undefined && (typeof idempotencyKey !== 'string' || idempotencyKey.length < 1 || idempotencyKey.length > 200)) {
    throw new ValidationError('idempotencyKey', 'must be a string of 1-200 characters');
  }
  if (idempotencyKey !== undefined) requireStorableText(idempotencyKey, 'idempotencyKey');
  if (pollScheduleMs !== undefined) {
    if (!Array.isArray(pollScheduleMs) || pollScheduleMs.length === 0 || pollScheduleMs.length > 50) {
      throw new ValidationError('pollScheduleMs', 'must be an array of 1-50 delays in milliseconds');
    }
    pollScheduleMs.forEach((delay, index) => {
      if (typeof delay !== 'number' || !Number.isInteger(delay) || delay < 100 || delay > 86_400_000) {
        throw new ValidationError(`pollScheduleMs[${index}]`, 'must be an integer between 100 ms and 24 h');
      }
    });
  }
  if (maxAgeMs !== undefined && (typeof maxAgeMs !== 'number' || !Number.isInteger(maxAgeMs) || maxAgeMs < 1000 || maxAgeMs > 7 * 86_400_000)) {
    throw new ValidationError('maxAgeMs', 'must be an integer between 1 s and 7 days');
  }
  if (maxRequestAttempts !== undefined && (typeof maxRequestAttempts !== 'number' || !Number.isInteger(maxRequestAttempts) || maxRequestAttempts < 1 || maxRequestAttempts > 10)) {
    throw new ValidationError('maxRequestAttempts', 'must be an integer from 1 to 10');
  }
  if (stragglers !== undefined) validateStragglers(stragglers, provider, typeof maxAgeMs === 'number' ? maxAgeMs : DEFAULT_MAX_AGE_MS);
  if (endpoint === '/v1/embeddings') {
    (requests as { params: Record<string, unknown> }[]).forEach((request, index) => {
      if (!('input' in request.params)) throw new ValidationError(`requests[${index}].params.input`, 'is required by the embeddings endpoint');
    });
  }
  return { ...(input as unknown as SubmitBatchInput), requests: validRequests };
}

/** Retry settings Temporal would refuse, as a ValidationError naming the field (e.g. `retry.maximumAttempts`). */
export function validateRetrySettings(settings: unknown, where: string): void {
  if (!isPlainObject(settings)) throw new ValidationError(where, 'must be an object of retry settings');
  try {
    checkRetrySettings(settings, where);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const [, field = where, rest = error.message] = /^(\S+) (.*)$/s.exec(error.message) ?? [];
    throw new ValidationError(field, rest);
  }
}

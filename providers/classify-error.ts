/**
 * Turns whatever an SDK call throws (HTTP errors, network failures, unparseable bodies) into a ProviderError whose
 * code and retryability drive the activity retry policy. Messages name provider, operation and target, and are
 * scrubbed: no API key, no request or result bodies, at most a short provider error message.
 */
import * as OpenAISdk from 'openai';
import * as AnthropicSdk from '@anthropic-ai/sdk';
import { NON_RETRYABLE_HTTP_STATUSES, ProviderError } from './errors';
import { asRecord, str, type JsonRecord } from './normalise';

export interface CallContext {
  provider: string;
  /** Adapter operation: submit, findExisting, getStatus, streamResults, cancel. */
  operation: string;
  /** Batch id the call is about, for the message. */
  target?: string;
  /** Strings to scrub from any text echoed from the provider (the API key). */
  secrets?: readonly string[];
}

const STATUS_CODES: Readonly<Record<number, string>> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  408: 'request_timeout',
  409: 'conflict',
  413: 'request_too_large',
  422: 'unprocessable',
  429: 'rate_limited',
  529: 'overloaded',
};

/** 429s that mean "out of money", not "slow down": retrying cannot help until someone acts. */
const QUOTA_CODES = new Set(['insufficient_quota', 'enforced_spend_limit_reached']);

/**
 * A 429 on create that says the provider's batch queue is full (Anthropic: requests in processing over the queue
 * cap; Gemini: RESOURCE_EXHAUSTED with an enqueued-tokens quota): `queue_limit_exceeded`, which admission control
 * handles by putting the batch back to wait (domain/admission.ts) instead of retrying the create at once.
 */
const QUEUE_LIMIT_TEXT = /enqueued|queue/i;

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH',
  'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);
const NETWORK_MESSAGE = /fetch failed|socket hang up|terminated|other side closed|network|connection|timed? ?out/i;

const MAX_ECHOED_MESSAGE = 200;

export function describeCall(ctx: CallContext): string {
  return `${ctx.provider} ${ctx.operation}${ctx.target ? ` ${ctx.target}` : ''}`;
}

export function classifyError(err: unknown, ctx: CallContext): ProviderError {
  if (err instanceof ProviderError) return err;
  if (isHttpError(err)) return fromHttpError(err, ctx);
  const call = describeCall(ctx);
  if (err instanceof OpenAISdk.APIUserAbortError || err instanceof AnthropicSdk.APIUserAbortError) {
    return new ProviderError(`${call}: request aborted`, { provider: ctx.provider, code: 'aborted', retryable: true });
  }
  const network = networkCause(err);
  if (network !== undefined) {
    return withCause(
      new ProviderError(`${call}: connection error (${network})`, {
        provider: ctx.provider,
        code: 'connection_error',
        retryable: true,
      }),
      err,
    );
  }
  if (err instanceof SyntaxError) return withCause(badResponse(ctx, 'body is not valid JSON'), err);
  const detail = err instanceof Error ? `${err.name}: ${scrub(err.message, ctx)}` : 'non-error value thrown';
  // Unknown failures are retryable: an activity retry is cheap, a wrongly dead-lettered batch is not.
  return withCause(
    new ProviderError(`${call}: unexpected error (${detail})`, { provider: ctx.provider, code: 'unexpected_error', retryable: true }),
    err,
  );
}

/** A 2xx response whose body is not the object we asked for (an HTML page from a proxy, a truncated body...). */
export function badResponse(ctx: CallContext, what: string): ProviderError {
  return new ProviderError(`${describeCall(ctx)}: unexpected response (${what})`, {
    provider: ctx.provider,
    code: 'bad_response',
    retryable: true,
  });
}

/** The SDKs hand back a string when a 2xx body is not JSON (a proxy's HTML page); insist on an object. */
export function requireRecord(value: unknown, ctx: CallContext, what: string): JsonRecord {
  const record = asRecord(value);
  if (!record) throw badResponse(ctx, `expected ${what}`);
  return record;
}

/** An object with a string id, as OpenAI and Anthropic return. */
export function requireObjectWithId(value: unknown, ctx: CallContext, what: string): JsonRecord & { id: string } {
  const record = requireRecord(value, ctx, what);
  if (typeof record.id !== 'string') throw badResponse(ctx, `expected ${what}`);
  return record as JsonRecord & { id: string };
}

/** Runs one SDK call and classifies anything it throws. */
export async function callProvider<T>(ctx: CallContext, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw classifyError(err, ctx);
  }
}

/** Classifies errors raised while a stream is consumed (a connection reset half-way through a results file). */
export async function* classifyStream<T>(ctx: CallContext, source: AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (err) {
    throw classifyError(err, ctx);
  }
}

interface HttpError {
  status: number;
  headers: { get(name: string): string | null } | undefined;
  error: unknown;
}

/**
 * A non-2xx response seen by an adapter whose SDK keeps no headers on its errors (Gemini, through its fetch hook):
 * status, headers and the parsed JSON body (undefined when the body is not JSON), classified like the SDKs' errors.
 */
export class HttpStatusError extends Error implements HttpError {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly error: unknown,
  ) {
    super(`HTTP ${status}`);
  }

  /** Reads (and so releases) the body; only JSON bodies are kept, an HTML page is never echoed. */
  static async from(response: Response): Promise<HttpStatusError> {
    if (/json/i.test(response.headers.get('content-type') ?? '')) {
      return new HttpStatusError(response.status, response.headers, await response.json().catch(() => undefined));
    }
    await response.body?.cancel().catch(() => undefined);
    return new HttpStatusError(response.status, response.headers, undefined);
  }
}

function isHttpError(err: unknown): err is HttpError {
  return (
    (err instanceof OpenAISdk.APIError || err instanceof AnthropicSdk.APIError || err instanceof HttpStatusError) &&
    typeof err.status === 'number' &&
    err.status > 0
  );
}

function fromHttpError(err: HttpError, ctx: CallContext): ProviderError {
  const { status, headers } = err;
  const contentType = headers?.get('content-type') ?? '';
  const isJson = /json/i.test(contentType);
  // OpenAI's SDK exposes the inner `error` object, Anthropic's the whole `{type:'error', error:{...}}` body.
  const body = asRecord(err.error);
  const inner = asRecord(body?.error) ?? body;
  const providerCode = str(inner?.code) ?? str(asRecord(inner?.details)?.error_code);
  // xAI puts the message in a string `error` next to a string `code` (the openai SDK hands over that string).
  const providerMessage = str(inner?.message) ?? str(body?.error) ?? str(err.error);

  const quota = status === 429 && providerCode !== undefined && QUOTA_CODES.has(providerCode);
  const queueLimit = !quota && status === 429 && ctx.operation === 'submit'
    && QUEUE_LIMIT_TEXT.test([providerMessage ?? '', ...googleQuotaIds(inner)].join(' '));
  const statusRetryable = !NON_RETRYABLE_HTTP_STATUSES.includes(status);
  const code = quota
    ? 'quota_exceeded'
    : queueLimit
      ? 'queue_limit_exceeded'
    : !isJson && statusRetryable
      ? 'bad_response'
      : STATUS_CODES[status] ?? (status >= 500 ? 'server_error' : `http_${status}`);

  let message = `${describeCall(ctx)}: HTTP ${status} ${code}`;
  if (isJson && providerMessage) message += ` - ${scrub(providerMessage, ctx)}`;
  if (!isJson) message += ` (non-JSON body${contentType ? `, ${contentType.split(';')[0]}` : ''})`;

  const retryAfterMs = (headers ? parseRetryAfter(headers) : undefined) ?? googleRetryDelay(inner);
  return new ProviderError(message, {
    provider: ctx.provider,
    code,
    httpStatus: status,
    retryable: statusRetryable && !quota,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
}

/** `retry-after-ms` (OpenAI/Anthropic extension) wins over `retry-after` (seconds or an HTTP date). */
export function parseRetryAfter(headers: { get(name: string): string | null }, now = Date.now()): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return Math.round(ms);
  const raw = headers.get('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw.trim());
  if (raw.trim() !== '' && Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Google APIs send their retry hint in the body: `error.details[{@type: ...RetryInfo, retryDelay: "7s"}]`. */
function googleRetryDelay(error: JsonRecord | undefined): number | undefined {
  const details = Array.isArray(error?.details) ? error.details : [];
  for (const detail of details) {
    const delay = /^(\d+(?:\.\d+)?)s$/.exec(str(asRecord(detail)?.retryDelay) ?? '');
    if (delay) return Math.round(Number(delay[1]) * 1000);
  }
  return undefined;
}

/** Quota ids and metrics a Google error names (`details[{@type: ...QuotaFailure, violations: [{quotaId, quotaMetric}]}]`). */
function googleQuotaIds(error: JsonRecord | undefined): string[] {
  const details = Array.isArray(error?.details) ? error.details : [];
  const ids: string[] = [];
  for (const detail of details) {
    const violations = asRecord(detail)?.violations;
    for (const violation of Array.isArray(violations) ? violations : []) {
      const record = asRecord(violation);
      for (const key of ['quotaId', 'quotaMetric']) {
        const value = str(record?.[key]);
        if (value) ids.push(value);
      }
    }
  }
  return ids;
}

/** Returns a short name for the network failure behind err, or undefined when it is not one. */
function networkCause(err: unknown): string | undefined {
  const sdkConnection =
    err instanceof OpenAISdk.APIConnectionError || err instanceof AnthropicSdk.APIConnectionError;
  const timeout = err instanceof OpenAISdk.APIConnectionTimeoutError || err instanceof AnthropicSdk.APIConnectionTimeoutError;
  let current: unknown = err;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    current = current.cause;
  }
  if (timeout) return 'timeout';
  if (sdkConnection) return 'connection failed';
  if (err instanceof Error && (err.name === 'AbortError' || NETWORK_MESSAGE.test(err.message))) return err.message.slice(0, 60);
  return undefined;
}

function scrub(text: string, ctx: CallContext): string {
  let result = text;
  for (const secret of ctx.secrets ?? []) {
    if (secret) result = result.split(secret).join('[redacted]');
  }
  // Providers echo (partially masked) keys in auth errors; drop anything key-shaped regardless.
  result = result.replace(/\b(sk-[A-Za-z0-9_-]{4,}|[A-Za-z0-9_-]*\*{3,}[A-Za-z0-9_-]*)/g, '[redacted]');
  result = result.replace(/\s+/g, ' ').trim();
  return result.length > MAX_ECHOED_MESSAGE ? `${result.slice(0, MAX_ECHOED_MESSAGE)}…` : result;
}

function withCause(error: ProviderError, cause: unknown): ProviderError {
  error.cause = cause;
  return error;
}

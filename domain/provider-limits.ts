/**
 * What each provider accepts in one provider batch. A logical batch over these limits is split into several provider
 * batches, and custom ids that break a provider's rule are mapped (batch_requests.provider_custom_id), not rejected.
 * Limits are values: the worker's providers carry theirs, and the client validates against the table it is given.
 */
export interface ProviderLimits {
  maxRequests: number;
  maxBytes: number;
  customIdPattern: RegExp;
  /**
   * Endpoints a batch may name (`endpoint` of submitBatch): chat completions, the Responses API, embeddings...
   * Absent: the provider has one kind of request only (Anthropic Messages, Gemini generateContent) and a batch names
   * none.
   */
  endpoints?: readonly string[];
}

export const CHAT_COMPLETIONS = '/v1/chat/completions';
export const RESPONSES = '/v1/responses';
export const EMBEDDINGS = '/v1/embeddings';
export const COMPLETIONS = '/v1/completions';

export type ProviderLimitsTable = Readonly<Record<string, ProviderLimits>>;

const PRINTABLE_ID = /^[\x21-\x7e]{1,512}$/;
const MB = 1024 * 1024;

const OPENAI_LIMITS: ProviderLimits = Object.freeze({
  maxRequests: 50_000, maxBytes: 200 * MB, customIdPattern: PRINTABLE_ID,
  endpoints: Object.freeze([CHAT_COMPLETIONS, RESPONSES, EMBEDDINGS, COMPLETIONS]),
});

/** Providers with an adapter, and OpenAI-compatible implementers under their usual registry names. */
export const KNOWN_PROVIDER_LIMITS: ProviderLimitsTable = Object.freeze({
  openai: OPENAI_LIMITS,
  anthropic: Object.freeze({ maxRequests: 100_000, maxBytes: 256 * MB, customIdPattern: /^[A-Za-z0-9_-]{1,64}$/ }),
  // Gemini takes a 2 GB input file and documents no request count; the adapter assembles the upload in memory,
  // so a part is capped at 500 MB. metadata.key / key: any string; printable ASCII is kept as is.
  gemini: Object.freeze({ maxRequests: 100_000, maxBytes: 500 * MB, customIdPattern: PRINTABLE_ID }),
  // xAI: no documented hard limits; batches over 100,000 requests "may be throttled". 200 MB is our cap (unverified).
  // xAI's batch lines are chat completions only.
  xai: Object.freeze({ maxRequests: 100_000, maxBytes: 200 * MB, customIdPattern: PRINTABLE_ID, endpoints: Object.freeze([CHAT_COMPLETIONS]) }),
  // Groq and Azure follow OpenAI (Groq's batches take chat completions only); Together and Mistral have their own
  // documented numbers and endpoints.
  groq: Object.freeze({ ...OPENAI_LIMITS, endpoints: Object.freeze([CHAT_COMPLETIONS]) }),
  'azure-openai': Object.freeze({ ...OPENAI_LIMITS, endpoints: Object.freeze([CHAT_COMPLETIONS, RESPONSES, EMBEDDINGS]) }),
  together: Object.freeze({ maxRequests: 50_000, maxBytes: 100 * MB, customIdPattern: PRINTABLE_ID, endpoints: Object.freeze([CHAT_COMPLETIONS, COMPLETIONS]) }),
  mistral: Object.freeze({ maxRequests: 100_000, maxBytes: 512 * MB, customIdPattern: PRINTABLE_ID, endpoints: Object.freeze([CHAT_COMPLETIONS, EMBEDDINGS]) }),
});

/**
 * The known table plus providers under names of their own (OpenAI-compatible endpoints): a name without limits of
 * its own takes OpenAI's, the protocol it speaks.
 */
export function providerLimitsTable(extra: Record<string, ProviderLimits | undefined> = {}): ProviderLimitsTable {
  const table: Record<string, ProviderLimits> = { ...KNOWN_PROVIDER_LIMITS };
  for (const [name, limits] of Object.entries(extra)) table[name] = limits ?? KNOWN_PROVIDER_LIMITS[name] ?? OPENAI_LIMITS;
  return Object.freeze(table);
}

/** Own entries only: 'constructor' or '__proto__' are unknown providers, not Object.prototype members. */
export function lookupLimits(table: ProviderLimitsTable, provider: string): ProviderLimits | undefined {
  return Object.prototype.hasOwnProperty.call(table, provider) ? table[provider] : undefined;
}

/** The most requests one logical batch may hold (it is split into provider batches). */
export const MAX_LOGICAL_REQUESTS = 1_000_000;

/** Mapped ids look like this; caller ids with the prefix are always mapped so the two can never collide. */
const MAPPED_PREFIX = 'bkmap-';

/** The id sent to the provider for a request: the caller's own when the provider accepts it, else a mapped one. */
export function providerCustomId(customId: string, position: number, limits: ProviderLimits): string {
  if (limits.customIdPattern.test(customId) && !customId.startsWith(MAPPED_PREFIX)) return customId;
  return `${MAPPED_PREFIX}${position}`;
}

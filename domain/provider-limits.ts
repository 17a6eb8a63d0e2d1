/**
 * What each provider accepts in one provider batch. A logical batch over these limits is split into several provider
 * batches, and custom ids that break a provider's rule are mapped (batch_requests.provider_custom_id), not rejected.
 */
export interface ProviderLimits {
  maxRequests: number;
  maxBytes: number;
  customIdPattern: RegExp;
}

export const PROVIDER_LIMITS: Record<string, ProviderLimits> = {
  openai: { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
  anthropic: { maxRequests: 100_000, maxBytes: 256 * 1024 * 1024, customIdPattern: /^[A-Za-z0-9_-]{1,64}$/ },
  // Gemini takes a 2 GB input file and documents no request count; the adapter assembles the upload in memory,
  // so a part is capped at 500 MB. metadata.key / key: any string; printable ASCII is kept as is.
  gemini: { maxRequests: 100_000, maxBytes: 500 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
  // xAI: no documented hard limits; batches over 100,000 requests "may be throttled". 200 MB is our cap (unverified).
  xai: { maxRequests: 100_000, maxBytes: 200 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
  // OpenAI-compatible implementers under their usual registry names (other names take OpenAI's limits when
  // configured; see registerProviderLimits). Groq and Azure follow OpenAI; Mistral's stricter documented numbers.
  groq: { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
  'azure-openai': { maxRequests: 50_000, maxBytes: 200 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
  together: { maxRequests: 50_000, maxBytes: 100 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
  mistral: { maxRequests: 100_000, maxBytes: 512 * 1024 * 1024, customIdPattern: /^[\x21-\x7e]{1,512}$/ },
};

/**
 * Limits for a provider registered at run time (an OpenAI-compatible endpoint under a name of its own). The worker
 * does it when it builds its providers; a process that only submits must do it too before submitting.
 */
export function registerProviderLimits(provider: string, limits: ProviderLimits): void {
  PROVIDER_LIMITS[provider] = limits;
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

/** Limits for a provider name; unknown names get the strictest known limits. */
export function limitsFor(provider: string): ProviderLimits {
  return PROVIDER_LIMITS[provider] ?? PROVIDER_LIMITS.anthropic;
}

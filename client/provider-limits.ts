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
};

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

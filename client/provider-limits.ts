/** What each provider accepts in one batch, checked before anything is written. */
export interface ProviderLimits {
  maxRequests: number;
  maxBytes: number;
  customIdPattern: RegExp;
  customIdRule: string;
}

export const PROVIDER_LIMITS: Record<string, ProviderLimits> = {
  openai: {
    maxRequests: 50_000,
    maxBytes: 200 * 1024 * 1024,
    customIdPattern: /^[\x21-\x7e]{1,512}$/,
    customIdRule: '1-512 printable ASCII characters without spaces',
  },
  anthropic: {
    maxRequests: 100_000,
    maxBytes: 256 * 1024 * 1024,
    customIdPattern: /^[A-Za-z0-9_-]{1,64}$/,
    customIdRule: "1-64 characters of [A-Za-z0-9_-] (Anthropic's rule)",
  },
};

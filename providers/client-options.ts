/** Connection options every adapter accepts, with the defaults the brief settles on. */
import { KNOWN_PROVIDER_LIMITS, providerLimitsTable, type ProviderLimits } from '../domain/provider-limits';

export interface ClientOptions {
  apiKey: string;
  baseURL?: string;
  /** Per-request timeout (headers only; result downloads stream past it). Default 60 s. */
  timeoutMs?: number;
  /** SDK-level retries for reads and uploads. Creates always use 0. Default 2. */
  maxRetries?: number;
  /** What one provider batch may hold. Default: the known limits of the provider's name (OpenAI's otherwise). */
  limits?: ProviderLimits;
  /** Delete a provider batch's files (input, output, error) once its results are stored. Default true. */
  deleteFiles?: boolean;
}

/** The adapter's limits: the ones it was given, else those known for its name, else OpenAI's. */
export function limitsFor(name: string, limits: ProviderLimits | undefined): ProviderLimits {
  return limits ?? KNOWN_PROVIDER_LIMITS[name] ?? providerLimitsTable({ [name]: undefined })[name]!;
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 2;

export function sdkOptions(options: ClientOptions): { apiKey: string; baseURL?: string; timeout: number; maxRetries: number } {
  if (!options.apiKey) throw new Error('provider apiKey is required');
  return {
    apiKey: options.apiKey,
    ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
  };
}

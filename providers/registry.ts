/** Builds the provider adapters batchkeeper runs with, from explicit config or the environment. */
import { PROVIDER_LIMITS, registerProviderLimits, type ProviderLimits } from '../domain/provider-limits';
import { AnthropicBatchProvider, type AnthropicProviderOptions } from './anthropic';
import { GeminiBatchProvider, type GeminiProviderOptions } from './gemini';
import { OpenAIBatchProvider, type OpenAIProviderOptions } from './openai';
import { OpenAICompatibleBatchProvider, type OpenAICompatibleOptions } from './openai-compatible';
import type { BatchProvider } from './types';
import { XAIBatchProvider, type XAIProviderOptions } from './xai';

export interface ProvidersConfig {
  /** baseURL includes `/v1`, e.g. http://127.0.0.1:4010/v1. */
  openai?: OpenAIProviderOptions;
  /** baseURL has no `/v1`, e.g. http://127.0.0.1:4010. */
  anthropic?: AnthropicProviderOptions;
  /** baseURL has no API version, e.g. http://127.0.0.1:4010. */
  gemini?: GeminiProviderOptions;
  /** baseURL includes `/v1`, e.g. https://api.x.ai/v1. */
  xai?: XAIProviderOptions;
  /** OpenAI-compatible batch APIs, each under its own registry name; `limits` default to OpenAI's. */
  openaiCompatible?: (OpenAICompatibleOptions & { limits?: ProviderLimits })[];
}

/** Only configured providers are registered, so an unknown provider name fails loudly at lookup. */
export function createProviders(config: ProvidersConfig): Map<string, BatchProvider> {
  const providers = new Map<string, BatchProvider>();
  const add = (provider: BatchProvider) => {
    if (providers.has(provider.name)) throw new Error(`provider ${provider.name} is configured twice`);
    providers.set(provider.name, provider);
  };
  if (config.openai) add(new OpenAIBatchProvider(config.openai));
  if (config.anthropic) add(new AnthropicBatchProvider(config.anthropic));
  if (config.gemini) add(new GeminiBatchProvider(config.gemini));
  if (config.xai) add(new XAIBatchProvider(config.xai));
  for (const { limits, ...options } of config.openaiCompatible ?? []) {
    add(new OpenAICompatibleBatchProvider(options));
    // Submissions are validated against the provider's limits; a name without its own entry takes OpenAI's.
    if (limits || !PROVIDER_LIMITS[options.name]) registerProviderLimits(options.name, limits ?? PROVIDER_LIMITS.openai!);
  }
  return providers;
}

/**
 * One entry of BATCHKEEPER_OPENAI_COMPATIBLE (a JSON array). The key is read from the variable named by apiKeyEnv,
 * so the JSON itself holds no secret; an entry whose key variable is empty is skipped.
 */
export interface OpenAICompatibleEnvEntry {
  name: string;
  baseURL: string;
  apiKeyEnv: string;
  apiVersion?: string;
  endpoint?: string;
  completionWindow?: string;
}

/** A provider is configured when its API key is set; empty strings count as unset. */
export function providersConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProvidersConfig {
  const config: ProvidersConfig = {};
  const keyed = (apiKey: string | undefined, baseURL: string | undefined) =>
    apiKey ? { apiKey, ...(baseURL ? { baseURL } : {}) } : undefined;
  const openai = keyed(env.OPENAI_API_KEY, env.OPENAI_BASE_URL);
  const anthropic = keyed(env.ANTHROPIC_API_KEY, env.ANTHROPIC_BASE_URL);
  const gemini = keyed(env.GEMINI_API_KEY, env.GEMINI_BASE_URL);
  const xai = keyed(env.XAI_API_KEY, env.XAI_BASE_URL);
  if (openai) config.openai = openai;
  if (anthropic) config.anthropic = anthropic;
  if (gemini) config.gemini = gemini;
  if (xai) config.xai = xai;
  const compatible = openaiCompatibleFromEnv(env);
  if (compatible.length) config.openaiCompatible = compatible;
  return config;
}

function openaiCompatibleFromEnv(env: NodeJS.ProcessEnv): OpenAICompatibleOptions[] {
  const raw = env.BATCHKEEPER_OPENAI_COMPATIBLE;
  if (!raw?.trim()) return [];
  let entries: unknown;
  try {
    entries = JSON.parse(raw);
  } catch {
    throw new Error('BATCHKEEPER_OPENAI_COMPATIBLE is not valid JSON (expected an array of {name, baseURL, apiKeyEnv})');
  }
  if (!Array.isArray(entries)) throw new Error('BATCHKEEPER_OPENAI_COMPATIBLE must be a JSON array of {name, baseURL, apiKeyEnv}');
  return entries.flatMap((entry: Partial<OpenAICompatibleEnvEntry>, index) => {
    const { name, baseURL, apiKeyEnv, apiVersion, endpoint, completionWindow } = entry ?? {};
    if (typeof name !== 'string' || typeof baseURL !== 'string' || typeof apiKeyEnv !== 'string') {
      throw new Error(`BATCHKEEPER_OPENAI_COMPATIBLE[${index}] needs string name, baseURL and apiKeyEnv`);
    }
    const apiKey = env[apiKeyEnv];
    if (!apiKey) return [];
    return [{
      name, baseURL, apiKey,
      ...(typeof apiVersion === 'string' ? { apiVersion } : {}),
      ...(typeof endpoint === 'string' ? { endpoint } : {}),
      ...(typeof completionWindow === 'string' ? { completionWindow } : {}),
    }];
  });
}

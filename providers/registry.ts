/** Builds the provider adapters batchkeeper runs with, from explicit config or the environment. */
import { AnthropicBatchProvider, type AnthropicProviderOptions } from './anthropic';
import { OpenAIBatchProvider, type OpenAIProviderOptions } from './openai';
import type { BatchProvider } from './types';

export interface ProvidersConfig {
  /** baseURL includes `/v1`, e.g. http://127.0.0.1:4010/v1. */
  openai?: OpenAIProviderOptions;
  /** baseURL has no `/v1`, e.g. http://127.0.0.1:4010. */
  anthropic?: AnthropicProviderOptions;
}

/** Only configured providers are registered, so an unknown provider name fails loudly at lookup. */
export function createProviders(config: ProvidersConfig): Map<string, BatchProvider> {
  const providers = new Map<string, BatchProvider>();
  const add = (provider: BatchProvider) => providers.set(provider.name, provider);
  if (config.openai) add(new OpenAIBatchProvider(config.openai));
  if (config.anthropic) add(new AnthropicBatchProvider(config.anthropic));
  return providers;
}

/** A provider is configured when its API key is set; empty strings count as unset. */
export function providersConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ProvidersConfig {
  const config: ProvidersConfig = {};
  if (env.OPENAI_API_KEY) {
    config.openai = { apiKey: env.OPENAI_API_KEY, ...(env.OPENAI_BASE_URL ? { baseURL: env.OPENAI_BASE_URL } : {}) };
  }
  if (env.ANTHROPIC_API_KEY) {
    config.anthropic = { apiKey: env.ANTHROPIC_API_KEY, ...(env.ANTHROPIC_BASE_URL ? { baseURL: env.ANTHROPIC_BASE_URL } : {}) };
  }
  return config;
}

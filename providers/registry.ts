/** Builds the provider adapters batchkeeper runs with (config/ reads their settings from the environment). */
import type { ProviderLimits } from '../domain/provider-limits';
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
  for (const options of config.openaiCompatible ?? []) add(new OpenAICompatibleBatchProvider(options));
  return providers;
}

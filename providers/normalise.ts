/**
 * Small, provider-neutral helpers for reading loosely-typed provider JSON. Provider objects drift between versions
 * and OpenAI-compatible implementers, so every field is read defensively: missing counts are 0, unknown statuses
 * are treated as still running.
 */
import type { ProviderBatchStatus, ProviderRequestCounts, TokenUsage } from './types';

export type JsonRecord = Record<string, unknown>;

export function asRecord(value: unknown): JsonRecord | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonRecord) : undefined;
}

export function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A finite, non-negative count; anything else is 0. */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

/** Case-insensitive status lookup; an unknown status is not terminal, so the poller simply keeps polling. */
export function normaliseStatus(raw: string, table: Readonly<Record<string, ProviderBatchStatus>>): ProviderBatchStatus {
  return table[raw.toLowerCase()] ?? 'in_progress';
}

export function makeCounts(partial: Partial<ProviderRequestCounts>): ProviderRequestCounts {
  return { total: 0, processing: 0, succeeded: 0, errored: 0, expired: 0, canceled: 0, ...partial };
}

/** Token usage from a provider usage object, or undefined when it carries neither field (input and output only). */
export function usageFrom(value: unknown, inputKey: string, outputKey: string): TokenUsage | undefined {
  const usage = asRecord(value);
  if (!usage || (usage[inputKey] === undefined && usage[outputKey] === undefined)) return undefined;
  return { inputTokens: count(usage[inputKey]), outputTokens: count(usage[outputKey]) };
}

/**
 * OpenAI-shaped usage (chat completions, Responses, embeddings; xAI): `prompt_tokens`/`completion_tokens` with
 * `prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens`, or the Responses API's
 * `input_tokens`/`output_tokens` with `input_tokens_details`/`output_tokens_details`. Both totals already include
 * the cached and reasoning tokens.
 */
export function openaiUsage(value: unknown): TokenUsage | undefined {
  const usage = asRecord(value);
  if (!usage) return undefined;
  const responses = usage.input_tokens !== undefined || usage.output_tokens !== undefined;
  const base = responses ? usageFrom(usage, 'input_tokens', 'output_tokens') : usageFrom(usage, 'prompt_tokens', 'completion_tokens');
  if (!base) return undefined;
  const inputDetails = asRecord(responses ? usage.input_tokens_details : usage.prompt_tokens_details);
  const outputDetails = asRecord(responses ? usage.output_tokens_details : usage.completion_tokens_details);
  return withExtras(base, { cachedInputTokens: inputDetails?.cached_tokens, reasoningTokens: outputDetails?.reasoning_tokens });
}

/**
 * Anthropic usage: `input_tokens` counts only the uncached input, so the cache reads and writes are added to it
 * (inputTokens is every input token everywhere); `output_tokens` includes extended thinking.
 */
export function anthropicUsage(value: unknown): TokenUsage | undefined {
  const usage = asRecord(value);
  const base = usageFrom(usage, 'input_tokens', 'output_tokens');
  if (!usage || !base) return undefined;
  const cacheRead = count(usage.cache_read_input_tokens);
  const cacheWrite = count(usage.cache_creation_input_tokens);
  return withExtras({ inputTokens: base.inputTokens + cacheRead + cacheWrite, outputTokens: base.outputTokens },
    { cachedInputTokens: cacheRead, cacheWriteTokens: cacheWrite });
}

/**
 * Gemini usageMetadata: `promptTokenCount` includes `cachedContentTokenCount`; `candidatesTokenCount` leaves out
 * `thoughtsTokenCount`, which is billed as output, so it is added to outputTokens.
 */
export function geminiUsage(value: unknown): TokenUsage | undefined {
  const usage = asRecord(value);
  const base = usageFrom(usage, 'promptTokenCount', 'candidatesTokenCount');
  if (!usage || !base) return undefined;
  const thoughts = count(usage.thoughtsTokenCount);
  return withExtras({ inputTokens: base.inputTokens, outputTokens: base.outputTokens + thoughts },
    { cachedInputTokens: usage.cachedContentTokenCount, reasoningTokens: thoughts });
}

/** Adds the extra counts that are present and above 0 (an absent count stays absent: stored as NULL). */
function withExtras(base: TokenUsage, extras: Partial<Record<'cachedInputTokens' | 'cacheWriteTokens' | 'reasoningTokens', unknown>>): TokenUsage {
  const usage: TokenUsage = { ...base };
  for (const [key, value] of Object.entries(extras) as [keyof typeof extras, unknown][]) {
    const n = count(value);
    if (n > 0) usage[key] = n;
  }
  return usage;
}

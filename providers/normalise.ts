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

/** Token usage from a provider usage object, or undefined when it carries neither field. */
export function usageFrom(value: unknown, inputKey: string, outputKey: string): TokenUsage | undefined {
  const usage = asRecord(value);
  if (!usage || (usage[inputKey] === undefined && usage[outputKey] === undefined)) return undefined;
  return { inputTokens: count(usage[inputKey]), outputTokens: count(usage[outputKey]) };
}

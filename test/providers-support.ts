/** Shared helpers for the provider adapter tests (real SDK adapters against the fake provider server). */
import assert from 'node:assert/strict';
import { AnthropicBatchProvider } from '../providers/anthropic';
import { ProviderError } from '../providers/errors';
import { OpenAIBatchProvider } from '../providers/openai';
import { isTerminalBatchStatus } from '../domain/statuses';
import { type BatchProvider, type ProviderRequest, type ProviderResultLine, type ProviderStatusReport } from '../providers/types';
import type { FakeProvider } from '../testing/fake-provider/server';

/** Distinctive so a leak into any error message is easy to spot. */
export const API_KEY = 'sk-test-SECRET-KEY-0123456789abcdef';

export type ProviderName = 'openai' | 'anthropic';
export const PROVIDER_NAMES: readonly ProviderName[] = ['openai', 'anthropic'];

/** Every ProviderError the tests saw, so a final check can assert none of them carries the key. */
export const seenErrors: ProviderError[] = [];

export function makeProvider(
  fake: FakeProvider,
  name: ProviderName,
  options: { maxRetries?: number; timeoutMs?: number } = {},
): BatchProvider {
  const common = { apiKey: API_KEY, maxRetries: options.maxRetries ?? 0, timeoutMs: options.timeoutMs ?? 5_000 };
  return name === 'openai'
    ? new OpenAIBatchProvider({ ...common, baseURL: fake.openaiBaseUrl })
    : new AnthropicBatchProvider({ ...common, baseURL: fake.anthropicBaseUrl });
}

export function requestsFor(ids: readonly string[]): ProviderRequest[] {
  return ids.map((customId) => ({
    customId,
    params: { max_tokens: 32, messages: [{ role: 'user', content: `Say something about ${customId}` }] },
  }));
}

export function ids(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
}

export async function waitForTerminal(provider: BatchProvider, providerBatchId: string, timeoutMs = 10_000): Promise<ProviderStatusReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await provider.getStatus(providerBatchId);
    if (isTerminalBatchStatus(report.status)) return report;
    if (Date.now() > deadline) throw new Error(`batch ${providerBatchId} still ${report.rawStatus} after ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Every line of a results stream, its blocks flattened in order. */
export async function collect(stream: AsyncIterable<ProviderResultLine[]>): Promise<ProviderResultLine[]> {
  const lines: ProviderResultLine[] = [];
  for await (const block of stream) lines.push(...block);
  return lines;
}

/** Lines keyed by custom id; fails on duplicates (results must be joinable by id). */
export function byCustomId(lines: readonly ProviderResultLine[]): Map<string, ProviderResultLine> {
  const map = new Map<string, ProviderResultLine>();
  for (const line of lines) {
    if (line.customId === undefined) continue;
    assert.ok(!map.has(line.customId), `duplicate result for ${line.customId}`);
    map.set(line.customId, line);
  }
  return map;
}

/** Asserts the promise rejects with a ProviderError (never mentioning the API key) and returns it. */
export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ProviderError, `expected ProviderError, got ${String(err)}`);
    assert.ok(!err.message.includes(API_KEY), `API key leaked into: ${err.message}`);
    seenErrors.push(err);
    return err;
  }
  assert.fail('expected a ProviderError');
}

/** The text the fake puts in a successful result, whatever the provider's shape. */
export function resultText(line: ProviderResultLine): string {
  assert.equal(line.kind, 'succeeded');
  const result = (line as { result: unknown }).result as {
    choices?: { message: { content: string } }[];
    content?: { text: string }[];
  };
  return result.choices?.[0]?.message.content ?? result.content?.[0]?.text ?? '';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

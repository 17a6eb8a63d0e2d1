/**
 * Full cost end to end: the fake provider reports cached input, cache-write and reasoning tokens in each provider's
 * own usage shape (OpenAI prompt/completion details, Anthropic cache_read/cache_creation, Gemini cachedContent and
 * thoughts, xAI as OpenAI); the adapters normalise them, PostgreSQL stores them per request and per batch, and the
 * stored cost equals the hand computation from the price table with the batch discount.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { PriceTable } from '../domain/prices';
import { fakeReply, FAKE_REASONING_TOKENS } from '../testing/fake-provider/replies';
import { createTestEnvironment, FAST_SCHEDULE_MS, TEST_API_KEY, type TestEnvironment } from './support/environment';

const PRICE = { inputPerMTokUsd: 3, outputPerMTokUsd: 15, cachedInputPerMTokUsd: 0.3, cacheWritePerMTokUsd: 3.75, reasoningPerMTokUsd: 20 };
const PRICES: PriceTable = {
  batchDiscount: 0.5,
  models: {
    openai: { 'cost-model': PRICE, 'cost-model-plain': { inputPerMTokUsd: 3, outputPerMTokUsd: 15 } },
    anthropic: { 'cost-model': PRICE },
    gemini: { 'cost-model': PRICE },
    xai: { 'cost-model': PRICE },
  },
};

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({
    prices: PRICES,
    retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 500, maximumAttempts: 3 } },
    extraProviders: (fake) => ({
      gemini: { apiKey: TEST_API_KEY, baseURL: fake.geminiBaseUrl, maxRetries: 0 },
      xai: { apiKey: TEST_API_KEY, baseURL: fake.xaiBaseUrl, maxRetries: 0 },
    }),
  });
});
after(async () => env?.teardown());

const LONG = 'Summarise the following review in one sentence, keeping the tone of the reviewer intact: '.repeat(3);

/** Request i of each provider: even ones ask for prompt caching, every third one for reasoning. */
const REQUESTS: Record<string, (i: number) => Record<string, unknown>> = {
  openai: (i) => ({
    max_tokens: 64, messages: [{ role: 'user', content: `${LONG} #${i}` }],
    ...(i % 2 === 0 ? { prompt_cache_key: 'reviews' } : {}), ...(i % 3 === 0 ? { reasoning_effort: 'low' } : {}),
  }),
  xai: (i) => ({
    max_tokens: 64, messages: [{ role: 'user', content: `${LONG} #${i}` }],
    ...(i % 2 === 0 ? { prompt_cache_key: 'reviews' } : {}), ...(i % 3 === 0 ? { reasoning_effort: 'low' } : {}),
  }),
  anthropic: (i) => ({
    max_tokens: 64,
    system: i % 2 === 0 ? [{ type: 'text', text: LONG, cache_control: { type: 'ephemeral' } }] : LONG,
    messages: [{ role: 'user', content: `review #${i}` }],
  }),
  gemini: (i) => ({
    contents: [{ role: 'user', parts: [{ text: `${LONG} #${i}` }] }],
    ...(i % 2 === 0 ? { cachedContent: 'cachedContents/reviews' } : {}),
    generationConfig: { maxOutputTokens: 64, ...(i % 3 === 0 ? { thinkingConfig: { thinkingBudget: 128 } } : {}) },
  }),
};

/** What each provider bills per request, by the fake's deterministic usage and the provider's own accounting. */
function expectedTokens(provider: string, customId: string, params: Record<string, unknown>) {
  const reply = fakeReply(customId, params);
  return {
    input: reply.inputTokens,
    cached: reply.cachedInputTokens,
    // Only Anthropic reports cache writes; only OpenAI, xAI and Gemini report reasoning apart from other output.
    cacheWrite: provider === 'anthropic' ? reply.cacheWriteTokens : 0,
    reasoning: provider === 'anthropic' ? 0 : reply.reasoningTokens,
    output: reply.outputTokens + reply.reasoningTokens,
  };
}

function usd(tokens: number, perMTok: number): number {
  return (tokens * perMTok * 0.5) / 1_000_000;
}

for (const provider of ['openai', 'anthropic', 'gemini', 'xai'] as const) {
  test(`${provider}: cached, cache-write and reasoning tokens stored and priced; cost equals the hand computation`, { timeout: 120_000 }, async () => {
    const requests = Array.from({ length: 6 }, (_, i) => ({ customId: `${provider}-cost-${i}`, params: REQUESTS[provider]!(i) }));
    const { batchId } = await env.client.submitBatch({ provider, model: 'cost-model', requests, pollScheduleMs: FAST_SCHEDULE_MS });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'ended');

    const { rows } = await env.pool.query(
      `SELECT custom_id, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, cost_usd::text
         FROM request_outcomes WHERE batch_id = $1 ORDER BY position`, [batchId],
    );
    let total = 0;
    const sums = { input: 0, output: 0, cached: 0, cacheWrite: 0, reasoning: 0 };
    for (const [index, row] of rows.entries()) {
      const want = expectedTokens(provider, row.custom_id, requests[index]!.params);
      assert.deepEqual(
        [row.input_tokens, row.output_tokens, row.cached_input_tokens ?? 0, row.cache_write_tokens ?? 0, row.reasoning_tokens ?? 0],
        [want.input, want.output, want.cached, want.cacheWrite, want.reasoning], `${row.custom_id} tokens`,
      );
      const cost = usd(want.input - want.cached - want.cacheWrite, PRICE.inputPerMTokUsd) + usd(want.cached, PRICE.cachedInputPerMTokUsd)
        + usd(want.cacheWrite, PRICE.cacheWritePerMTokUsd) + usd(want.output - want.reasoning, PRICE.outputPerMTokUsd)
        + usd(want.reasoning, PRICE.reasoningPerMTokUsd);
      assert.ok(Math.abs(Number(row.cost_usd) - cost) < 1e-8, `${row.custom_id}: stored ${row.cost_usd}, computed ${cost}`);
      total += cost;
      sums.input += want.input; sums.output += want.output; sums.cached += want.cached;
      sums.cacheWrite += want.cacheWrite; sums.reasoning += want.reasoning;
    }
    assert.ok(sums.cached > 0, 'the fake reported cached input');
    if (provider === 'anthropic') assert.ok(sums.cacheWrite > 0, 'the fake reported cache writes');
    else assert.equal(sums.reasoning, 2 * FAKE_REASONING_TOKENS, 'two requests asked for reasoning');

    const stored = (await env.client.getBatch(batchId)).batch;
    assert.deepEqual(
      [stored.inputTokens, stored.outputTokens, stored.cachedInputTokens, stored.cacheWriteTokens, stored.reasoningTokens],
      [sums.input, sums.output, sums.cached, sums.cacheWrite, sums.reasoning], 'rolled up on the batch',
    );
    assert.ok(stored.costUsd !== null && Math.abs(stored.costUsd - total) < 1e-7, `batch cost ${stored.costUsd} = ${total}`);
    // Cached input priced at a tenth of input: a cost that ignored the cache would be higher than this.
    const naive = sums.input * PRICE.inputPerMTokUsd * 0.5 / 1e6 + sums.output * PRICE.outputPerMTokUsd * 0.5 / 1e6;
    assert.notEqual(Math.round(naive * 1e8), Math.round(total * 1e8), 'the cached/reasoning rates changed the cost');
  });
}

test('a model priced without the cache and reasoning rates bills them at the input and output prices', { timeout: 120_000 }, async () => {
  const requests = Array.from({ length: 4 }, (_, i) => ({ customId: `plain-${i}`, params: REQUESTS.openai!(i) }));
  const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'cost-model-plain', requests, pollScheduleMs: FAST_SCHEDULE_MS });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  let total = 0;
  for (const request of requests) {
    const want = expectedTokens('openai', request.customId, request.params);
    total += usd(want.input, 3) + usd(want.output, 15);
  }
  assert.ok(batch.costUsd !== null && Math.abs(batch.costUsd - total) < 1e-7, `cost ${batch.costUsd} = ${total}`);
  assert.ok(batch.cachedInputTokens > 0 && batch.reasoningTokens > 0, 'the extra counts are still stored');
});

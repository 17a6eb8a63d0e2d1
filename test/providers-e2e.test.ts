/**
 * Gemini and xAI end to end: a real batchWorkflow on the real Temporal server and PostgreSQL, the adapters talking
 * to the fake provider through `@google/genai` and xAI's REST shapes, to `ended` with the handler called once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createTestEnvironment, FAST_SCHEDULE_MS, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({
    handlers,
    retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 500, maximumAttempts: 3 } },
    extraProviders: (fake) => ({
      gemini: { apiKey: TEST_API_KEY, baseURL: fake.geminiBaseUrl, maxRetries: 0 },
      xai: { apiKey: TEST_API_KEY, baseURL: fake.xaiBaseUrl, maxRetries: 0 },
    }),
  });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

const REQUESTS = {
  gemini: (customId: string) => ({ contents: [{ role: 'user', parts: [{ text: `Say hello as ${customId}` }] }], generationConfig: { maxOutputTokens: 32 } }),
  xai: (customId: string) => ({ max_tokens: 32, messages: [{ role: 'user', content: `Say hello as ${customId}` }] }),
};

for (const provider of ['gemini', 'xai'] as const) {
  test(`${provider}: a batch runs to ended, results stored per request, the handler called once`, async () => {
    const prefix = `${provider}-e2e`;
    env.fake.setOutcomes({ [`${prefix}-3`]: 'invalid', [`${prefix}-4`]: 'missing' });
    const requests = Array.from({ length: 5 }, (_, index) => ({ customId: `${prefix}-${index}`, params: REQUESTS[provider](`${prefix}-${index}`) }));
    const { batchId } = await env.client.submitBatch({ provider, model: `${provider}-model`, requests, handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'ended');
    assert.ok(batch.resultsFetchedAt && batch.handlerDispatchedAt);
    assert.ok(batch.inputTokens > 0, 'token usage rolled up');

    const { rows } = await env.pool.query('SELECT custom_id, status, result FROM request_outcomes WHERE batch_id = $1', [batchId]);
    const byId = new Map(rows.map((row) => [row.custom_id as string, row]));
    assert.deepEqual(requests.map((request) => byId.get(request.customId)?.status), ['succeeded', 'succeeded', 'succeeded', 'errored', 'missing']);
    // The fake echoes the request's id in its answer: a result joined to the wrong request would show here.
    for (const index of [0, 1, 2]) assert.match(JSON.stringify(byId.get(`${prefix}-${index}`)?.result), new RegExp(`${prefix}-${index}\\b`));

    const calls = (await env.pool.query('SELECT * FROM public.handler_calls WHERE batch_id = $1', [batchId])).rows;
    assert.equal(calls.length, 1);
    assert.deepEqual([calls[0].outcome, calls[0].succeeded, calls[0].errored, calls[0].missing], ['ended', 3, 1, 1]);
    const created = env.fake.createdBatches().filter((info) => info.provider === provider);
    assert.equal(created.length, 1, 'one provider batch');
    assert.equal(created[0]!.batchkeeperBatchId, batchId, 'tagged with our batch id (display name / batch name)');
  });
}

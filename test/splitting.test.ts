/**
 * A logical batch over a provider's limits is split into several provider batches, polled together and reported
 * as one; ids that break a provider's rules are mapped, not rejected.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KNOWN_PROVIDER_LIMITS as PROVIDER_LIMITS } from '../domain/provider-limits';
import { createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({ handlers, fakeProcessingMs: 1500 });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

function bigRequests(count: number, prefix: string) {
  return Array.from({ length: count }, (_, index) => ({
    customId: `${prefix}-${index}`,
    params: { max_tokens: 8, messages: [{ role: 'user', content: `n${index}` }] },
  }));
}

for (const provider of ['anthropic', 'openai'] as const) {
  test(`${provider}: 120,000 requests split by the provider limit, polled together, merged, handler once`, { timeout: 600_000 }, async () => {
    const limit = PROVIDER_LIMITS[provider].maxRequests;
    const expectedParts = Math.ceil(120_000 / limit);
    const started = Date.now();
    const { batchId } = await env.client.submitBatch({
      provider, model: 'model-x', requests: bigRequests(120_000, `big-${provider}`), handler: 'record', pollScheduleMs: [1000],
    });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 540_000 });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    assert.equal(batch.status, 'ended');
    const { rows: parts } = await env.pool.query(
      'SELECT part, request_count, provider_batch_id, status FROM provider_batches WHERE batch_id = $1 ORDER BY part', [batchId],
    );
    assert.equal(parts.length, expectedParts, `${provider}: ${expectedParts} provider batches`);
    assert.ok(parts.every((part) => part.request_count <= limit && part.status === 'ended'));
    assert.equal(parts.reduce((sum, part) => sum + part.request_count, 0), 120_000);
    const created = env.fake.createdBatches().filter((info) => parts.some((part) => part.provider_batch_id === info.id));
    assert.equal(created.length, expectedParts, 'one provider batch per part, none twice');
    const { rows: counts } = await env.pool.query(
      `SELECT status, count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 GROUP BY status`, [batchId],
    );
    assert.deepEqual(counts, [{ status: 'succeeded', n: 120_000 }]);
    const { rows: calls } = await env.pool.query('SELECT succeeded, results_seen FROM public.handler_calls WHERE batch_id = $1', [batchId]);
    assert.deepEqual(calls, [{ succeeded: 120_000, results_seen: 120_000 }], 'the handler ran once over the merged results');
    console.log(`[splitting] ${provider}: 120,000 requests in ${expectedParts} provider batches, done in ${seconds} s`);
  });
}

test('custom ids that break the provider rule are mapped through the stored table and joined back', async () => {
  const requests = [
    { customId: 'order #1/2026', params: { messages: [{ role: 'user', content: 'a' }] } },
    { customId: 'x'.repeat(100), params: { messages: [{ role: 'user', content: 'b' }] } },
    { customId: 'bkmap-0', params: { messages: [{ role: 'user', content: 'c' }] } },
    { customId: 'plain_id-3', params: { messages: [{ role: 'user', content: 'd' }] } },
  ];
  const { batchId } = await env.client.submitBatch({ provider: 'anthropic', model: 'model-x', requests, handler: 'record', pollScheduleMs: [300] });
  await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  const { rows } = await env.pool.query(
    'SELECT custom_id, provider_custom_id, status, result FROM request_outcomes WHERE batch_id = $1 ORDER BY position', [batchId],
  );
  assert.deepEqual(rows.map((row) => row.provider_custom_id), ['bkmap-0', 'bkmap-1', 'bkmap-2', 'plain_id-3']);
  for (const row of rows) {
    assert.equal(row.status, 'succeeded');
    assert.match(JSON.stringify(row.result), new RegExp(row.provider_custom_id), 'joined back through the mapped id');
  }
});

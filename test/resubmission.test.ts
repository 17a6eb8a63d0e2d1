/**
 * Per-request resubmission and cost: retryably failed, expired and missing requests go into follow-up provider
 * batches with a try count per request; permanent errors never do; the handler sees one merged result set.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({
    handlers,
    prices: { batchDiscount: 0.5, models: { openai: { 'model-x': { inputPerMTokUsd: 2, outputPerMTokUsd: 8 } } } },
  });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

async function rows(batchId: string) {
  const result = await env.pool.query(
    `SELECT custom_id, status, retryable, attempts, round, dead_lettered_at, input_tokens, output_tokens, cost_usd
       FROM request_outcomes WHERE batch_id = $1 ORDER BY position`, [batchId],
  );
  return new Map(result.rows.map((row) => [row.custom_id, row]));
}

for (const provider of ['openai', 'anthropic'] as const) {
  test(`${provider}: 10% errored and 5% expired succeed on resubmission; a request that always errors is dead-lettered; invalid ones are not resent`, async () => {
    const prefix = `resub-${provider}`;
    const outcomes: Record<string, unknown> = {};
    for (let i = 0; i < 10; i += 1) outcomes[`${prefix}-${i}`] = { outcome: 'errored', times: 1 };
    for (let i = 10; i < 15; i += 1) outcomes[`${prefix}-${i}`] = { outcome: 'expired', times: 1 };
    outcomes[`${prefix}-15`] = 'errored';
    outcomes[`${prefix}-16`] = 'invalid';
    env.fake.setOutcomes(outcomes as never);
    const { batchId } = await env.client.submitBatch({
      provider, model: 'model-x', requests: chatRequests(100, prefix), handler: 'record', pollScheduleMs: [200], maxRequestAttempts: 3,
    });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 90_000 });
    assert.equal(batch.status, 'ended');
    assert.equal(batch.round, 3, 'two follow-up rounds: the always-failing request went round until its limit');
    const stored = await rows(batchId);
    for (let i = 0; i < 15; i += 1) {
      const row = stored.get(`${prefix}-${i}`);
      assert.deepEqual([row.status, row.attempts], ['succeeded', 2], `${prefix}-${i} succeeded on its second submission`);
    }
    const always = stored.get(`${prefix}-15`);
    assert.deepEqual([always.status, always.attempts, always.dead_lettered_at !== null], ['errored', 3, true]);
    const invalid = stored.get(`${prefix}-16`);
    assert.deepEqual([invalid.status, invalid.retryable, invalid.attempts, invalid.dead_lettered_at], ['errored', false, 1, null]);
    assert.equal(stored.get(`${prefix}-50`).attempts, 1);
    assert.equal(batch.deadLetteredRequests, 1);

    const { rows: parts } = await env.pool.query(
      'SELECT round, request_count, provider_batch_id FROM provider_batches WHERE batch_id = $1 ORDER BY round, part', [batchId],
    );
    assert.deepEqual(parts.map((part) => [part.round, part.request_count]), [[1, 100], [2, 16], [3, 1]]);
    const providerIds = new Set(env.fake.createdBatches().map((info) => info.id));
    assert.ok(parts.every((part) => providerIds.has(part.provider_batch_id)), 'each round is its own provider batch');
    const { rows: calls } = await env.pool.query('SELECT * FROM public.handler_calls WHERE batch_id = $1', [batchId]);
    assert.equal(calls.length, 1, 'the handler runs once, after the last round');
    assert.deepEqual([calls[0].succeeded, calls[0].errored, calls[0].results_seen], [98, 2, 100]);
    const kinds = (await env.client.getTimeline('batch', batchId)).map((event) => event.kind);
    assert.equal(kinds.filter((kind) => kind === 'resubmitting').length, 2);
    assert.ok(kinds.includes('requests_dead_lettered'));
  });
}

test('cost per request and per batch from the price table with the batch discount', async () => {
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(5, 'cost'), handler: 'record', pollScheduleMs: [200],
  });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  const stored = [...(await rows(batchId)).values()];
  const expected = stored.reduce((sum, row) => sum + (row.input_tokens * 2 + row.output_tokens * 8) * 0.5 / 1e6, 0);
  assert.ok(expected > 0);
  assert.ok(Math.abs(batch.costUsd! - expected) < 1e-9, `${batch.costUsd} vs ${expected}`);
  assert.ok(stored.every((row) => Number(row.cost_usd) > 0));
  const state = await env.client.batchState(batchId).catch(() => undefined);
  if (state) assert.ok(Math.abs((state.summary?.costUsd ?? 0) - expected) < 1e-9, 'cost in the workflow state');
  const unpriced = await env.client.submitBatch({ provider: 'anthropic', model: 'model-x', requests: chatRequests(2, 'nocost'), pollScheduleMs: [200] });
  assert.equal((await env.client.waitForBatch(unpriced.batchId, { timeoutMs: 30_000 })).costUsd, null, 'no price, no made-up cost');
});

/**
 * The straggler fallback (`stragglers` on submitBatch, off by default): after `afterMs` in progress, or at the
 * deadline, the requests the provider batch has not answered go through the provider's synchronous API (OpenAI chat
 * completions, Anthropic messages, through the SDKs against the fake), under the rate limit, each stored as done
 * synchronously and priced at the full rate; the provider batch is cancelled and the handler sees one merged set.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ValidationError } from '../client/errors';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

const PRICE = { inputPerMTokUsd: 1000, outputPerMTokUsd: 2000 };
let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({
    handlers,
    prices: { batchDiscount: 0.5, models: { openai: { 'model-x': PRICE }, anthropic: { 'model-x': PRICE } } },
    retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 500, maximumAttempts: 3 } },
  });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

async function outcomes(batchId: string) {
  const { rows } = await env.pool.query(
    `SELECT o.custom_id, o.status, o.synchronous, o.round, o.attempts, o.input_tokens, o.output_tokens, o.cost_usd::float8 AS cost, o.result,
            o.completed_at FROM request_outcomes o WHERE o.batch_id = $1 ORDER BY o.position`,
    [batchId],
  );
  return rows;
}

const fullCost = (row: { input_tokens: number; output_tokens: number }) => (row.input_tokens * PRICE.inputPerMTokUsd + row.output_tokens * PRICE.outputPerMTokUsd) / 1e6;
const syncCalls = (name: string) => env.fake.routeCounts()[name] ?? 0;

describe('validation', () => {
  const base = { provider: 'openai', model: 'model-x', requests: chatRequests(1, 'v') };
  for (const [stragglers, field, overrides] of [
    [{}, 'stragglers'],
    [{ atDeadline: false }, 'stragglers'],
    [{ afterMs: 10 }, 'stragglers.afterMs'],
    [{ afterMs: 5000, every: 1 }, 'stragglers.every'],
    [{ atDeadline: 'yes' }, 'stragglers.atDeadline'],
    [{ atDeadline: true, maxRequestsPerSecond: 0 }, 'stragglers.maxRequestsPerSecond'],
    [{ afterMs: 60_000 }, 'stragglers.afterMs', { maxAgeMs: 30_000 }],
    [{ atDeadline: true }, 'stragglers', { provider: 'gemini' }],
  ] as [unknown, string, Record<string, unknown>?][]) {
    test(`${JSON.stringify(stragglers)} is refused, naming ${field}`, async () => {
      await assert.rejects(
        env.client.submitBatch({ ...base, ...overrides, stragglers } as never),
        (error: unknown) => error instanceof ValidationError && error.field === field,
      );
    });
  }
});

describe('after a set time in progress', () => {
  test('the unanswered requests go through chat completions, rate-limited, priced at the full rate; one merged set', async () => {
    const prefix = 'strag-after';
    env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, processingMs: 8000, times: 1 }] });
    const callsBefore = syncCalls('openai.chat.completions.create');
    const { batchId } = await env.client.submitBatch({
      provider: 'openai', model: 'model-x', requests: chatRequests(10, prefix), handler: 'record', pollScheduleMs: [5000],
      stragglers: { afterMs: 3500, maxRequestsPerSecond: 4 },
    });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'ended', 'every request had its answer: ended, not canceled');

    const rows = await outcomes(batchId);
    assert.equal(rows.length, 10);
    assert.ok(rows.every((row) => row.status === 'succeeded'), JSON.stringify(rows.map((row) => [row.custom_id, row.status])));
    const synchronous = rows.filter((row) => row.synchronous);
    const batched = rows.filter((row) => !row.synchronous);
    assert.ok(synchronous.length >= 2 && batched.length >= 1, `a mix (synchronous ${synchronous.length}, batch ${batched.length})`);
    assert.equal(syncCalls('openai.chat.completions.create') - callsBefore, synchronous.length, 'one synchronous call per straggler');
    for (const row of synchronous) {
      assert.equal(row.round, 2);
      assert.equal(row.attempts, 2, 'the batch submission and the synchronous call');
      // The fake answers with the request's own last message: each answer belongs to its request.
      const index = Number(row.custom_id.split('-').pop());
      assert.match(JSON.stringify(row.result), new RegExp(`Say hello number ${index}\\b`));
      assert.equal(row.result.object, 'chat.completion');
      assert.ok(Math.abs(row.cost - fullCost(row)) < 1e-6, `full rate: ${row.cost} vs ${fullCost(row)}`);
    }
    for (const row of batched) assert.ok(Math.abs(row.cost - fullCost(row) / 2) < 1e-6, 'batch results keep the batch discount');
    const times = synchronous.map((row) => Date.parse(row.completed_at)).sort((a, b) => a - b);
    // Calls start 250 ms apart; completion times carry each call's own latency, so allow one interval of jitter.
    assert.ok(times.at(-1)! - times[0]! >= (synchronous.length - 2) * 250, `at most 4 a second: ${times.at(-1)! - times[0]!} ms for ${synchronous.length}`);

    const { rows: calls } = await env.pool.query('SELECT outcome, succeeded, results_seen FROM public.handler_calls WHERE batch_id = $1', [batchId]);
    assert.deepEqual(calls, [{ outcome: 'ended', succeeded: 10, results_seen: 10 }], 'the handler saw one merged set, once');
    const provider = env.fake.batch(batch.providerBatchId!)!;
    assert.equal(provider.phase, 'cancelled', 'the provider batch was cancelled');
    const kinds = (await env.client.getTimeline('batch', batchId)).map((event) => event.kind);
    assert.ok(kinds.includes('stragglers_sent_synchronously'));
    const totalCost = rows.reduce((sum, row) => sum + row.cost, 0);
    assert.ok(Math.abs((batch.costUsd ?? 0) - totalCost) < 1e-6, 'the batch cost sums both kinds');
  });
});

describe('a refused synchronous call', () => {
  test("fails only its own request, stored as that request's errored outcome", async () => {
    const prefix = 'strag-refused';
    env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, processingMs: 600_000, times: 1 }] });
    env.fake.injectFault({ route: 'anthropic.messages.create', status: 400, shouldRetry: false, count: 1 });
    const { batchId } = await env.client.submitBatch({
      provider: 'anthropic', model: 'model-x', requests: chatRequests(3, prefix), handler: 'record', pollScheduleMs: [5000],
      stragglers: { afterMs: 1500, maxRequestsPerSecond: 20 },
    });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'ended');
    const { rows } = await env.pool.query(
      'SELECT status, synchronous, retryable, error_code, error_message FROM request_outcomes WHERE batch_id = $1 ORDER BY position', [batchId],
    );
    assert.deepEqual(rows.map((row) => [row.status, row.synchronous]), [['errored', true], ['succeeded', true], ['succeeded', true]]);
    assert.equal(rows[0].retryable, false);
    assert.match(rows[0].error_message, /^synchronous fallback: /);
    const { rows: calls } = await env.pool.query('SELECT succeeded, errored FROM public.handler_calls WHERE batch_id = $1', [batchId]);
    assert.deepEqual(calls, [{ succeeded: 2, errored: 1 }]);
  });
});

describe('at the deadline', () => {
  test('an Anthropic batch past its deadline gets its requests answered through messages.create; it stays expired', async () => {
    const prefix = 'strag-deadline';
    env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, processingMs: 600_000, times: 1 }] });
    const callsBefore = syncCalls('anthropic.messages.create');
    const { batchId } = await env.client.submitBatch({
      provider: 'anthropic', model: 'model-x', requests: chatRequests(3, prefix), handler: 'record', pollScheduleMs: [5000], maxAgeMs: 2000,
      stragglers: { atDeadline: true },
    });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'expired');
    const rows = await outcomes(batchId);
    assert.deepEqual(rows.map((row) => [row.status, row.synchronous]), [['succeeded', true], ['succeeded', true], ['succeeded', true]]);
    assert.equal(rows[0].result.type, 'message');
    assert.equal(syncCalls('anthropic.messages.create') - callsBefore, 3);
    const { rows: calls } = await env.pool.query('SELECT outcome, succeeded FROM public.handler_calls WHERE batch_id = $1', [batchId]);
    assert.deepEqual(calls, [{ outcome: 'expired', succeeded: 3 }]);
  });

  test('without the option nothing is sent synchronously (off by default)', async () => {
    const prefix = 'strag-off';
    env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, processingMs: 600_000, times: 1 }] });
    const callsBefore = syncCalls('anthropic.messages.create') + syncCalls('openai.chat.completions.create');
    const { batchId } = await env.client.submitBatch({
      provider: 'openai', model: 'model-x', requests: chatRequests(2, prefix), handler: 'record', pollScheduleMs: [5000], maxAgeMs: 2000,
    });
    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'expired');
    const rows = await outcomes(batchId);
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.ok(['canceled', 'expired'].includes(row.status), row.status);
      assert.equal(row.synchronous, false);
    }
    assert.equal(syncCalls('anthropic.messages.create') + syncCalls('openai.chat.completions.create'), callsBefore);
  });
});

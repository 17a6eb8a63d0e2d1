/**
 * The core path end to end on a real Temporal server and real PostgreSQL, with the real OpenAI and Anthropic
 * adapters talking to the fake provider through the official SDKs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';
import { waitFor } from './support/wait';

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({
    handlers,
    retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 500, maximumAttempts: 3 } },
  });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

async function handlerCalls(batchId: string) {
  const { rows } = await env.pool.query('SELECT * FROM public.handler_calls WHERE batch_id = $1', [batchId]);
  return rows;
}

async function requestRows(batchId: string) {
  const { rows } = await env.pool.query(
    'SELECT custom_id, status, result, error_code, retryable, input_tokens FROM request_outcomes WHERE batch_id = $1 ORDER BY position',
    [batchId],
  );
  return new Map(rows.map((row) => [row.custom_id, row]));
}

for (const provider of ['openai', 'anthropic'] as const) {
  describe(`${provider} lifecycle`, () => {
    test('results per request land in PostgreSQL and the handler runs once', async () => {
      const requests = chatRequests(5, `${provider}-ok`);
      const { batchId, created } = await env.client.submitBatch({
        provider, model: 'model-x', requests, handler: 'record', metadata: { purpose: 'lifecycle' }, pollScheduleMs: FAST_SCHEDULE_MS,
      });
      assert.equal(created, true);
      const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
      assert.equal(batch.status, 'ended');
      assert.ok(batch.resultsFetchedAt && batch.handlerDispatchedAt && batch.submittedAt && batch.deadlineAt);
      assert.ok(batch.pollCount >= 1);
      assert.ok(batch.inputTokens > 0, 'token usage rolled up');

      const rows = await requestRows(batchId);
      assert.equal(rows.size, 5);
      for (const request of requests) {
        const row = rows.get(request.customId)!;
        assert.equal(row.status, 'succeeded', `${request.customId} succeeded`);
        // The fake echoes the custom id in its answer: a result joined to the wrong request would show here.
        assert.match(JSON.stringify(row.result), new RegExp(request.customId));
        assert.ok(row.input_tokens > 0);
      }
      const calls = await handlerCalls(batchId);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].outcome, 'ended');
      assert.equal(calls[0].succeeded, 5);
      assert.equal(calls[0].results_seen, 5, 'the handler paged through every result');

      const created_ = env.fake.createdBatches().filter((info) => info.id === batch.providerBatchId);
      assert.equal(created_.length, 1);
      const kinds = (await env.client.getTimeline('batch', batchId)).map((event) => event.kind);
      assert.deepEqual(kinds.filter((kind) => ['created', 'submitted', 'results_stored', 'handler_dispatched'].includes(kind)),
        ['created', 'submitted', 'results_stored', 'handler_dispatched']);
    });

    test('per-request failures, missing entries and a malformed line fail only their own request', async () => {
      const prefix = `${provider}-mix`;
      const requests = chatRequests(7, prefix);
      env.fake.setOutcomes({
        [`${prefix}-1`]: 'errored', [`${prefix}-2`]: 'invalid', [`${prefix}-3`]: 'expired', [`${prefix}-4`]: 'missing', [`${prefix}-5`]: 'malformed',
      });
      const { batchId } = await env.client.submitBatch({ provider, model: 'model-x', requests, handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
      const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
      assert.equal(batch.status, 'ended');
      const rows = await requestRows(batchId);
      assert.equal(rows.get(`${prefix}-0`).status, 'succeeded');
      assert.equal(rows.get(`${prefix}-6`).status, 'succeeded');
      assert.deepEqual([rows.get(`${prefix}-1`).status, rows.get(`${prefix}-1`).retryable], ['errored', true]);
      assert.deepEqual([rows.get(`${prefix}-2`).status, rows.get(`${prefix}-2`).retryable], ['errored', false]);
      assert.equal(rows.get(`${prefix}-3`).status, 'expired');
      assert.equal(rows.get(`${prefix}-4`).status, 'missing');
      assert.deepEqual([rows.get(`${prefix}-5`).status, rows.get(`${prefix}-5`).error_code], ['errored', 'malformed_result']);
      const [call] = await handlerCalls(batchId);
      assert.deepEqual([call.succeeded, call.errored, call.expired, call.missing], [2, 3, 1, 1]);
    });
  });
}

test('a provider-side failed batch is recorded with its reason and the handler is told', async () => {
  const requests = chatRequests(3, 'failed-batch');
  env.fake.configure({ batchRules: [{ match: { customId: 'failed-batch-0' }, outcome: 'failed' }] });
  const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests, handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  assert.equal(batch.status, 'failed');
  assert.ok(batch.failureCode, 'the provider failure code is kept');
  assert.ok(batch.failedAt);
  const [call] = await handlerCalls(batchId);
  assert.equal(call.outcome, 'failed');
  assert.equal(call.missing, 3);
});

test('each step of a batch records one successful try (submit and fetch_results in their last statement)', async () => {
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(2, 'steps'), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS,
  });
  await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  const { steps } = await env.client.getBatch(batchId);
  const byStep = new Map(steps.map((step) => [step.step, step]));
  for (const name of ['submit', 'poll', 'fetch_results', 'dispatch_handler']) {
    const step = byStep.get(name as (typeof steps)[number]['step']);
    assert.ok(step?.succeededAt, `${name}: success recorded`);
    assert.equal(step.lastError, null, `${name}: no error`);
    assert.equal(step.attempt, 1, `${name}: first attempt`);
  }
  const stored = (await env.client.getTimeline('batch', batchId)).filter((event) => event.kind === 'results_stored');
  assert.equal(stored.length, 1, 'results_stored logged once');
  assert.equal(stored[0]!.detail.succeeded, 2);
});

test('submitting twice with the same idempotency key gives one batch, one workflow, one provider batch', async () => {
  const input = {
    provider: 'anthropic', model: 'model-x', requests: chatRequests(2, 'idem'), handler: 'record',
    idempotencyKey: 'order-42', pollScheduleMs: FAST_SCHEDULE_MS,
  };
  const [first, second] = await Promise.all([env.client.submitBatch(input), env.client.submitBatch(input)]);
  const third = await env.client.submitBatch(input);
  assert.equal(first.batchId, second.batchId);
  assert.equal(first.batchId, third.batchId);
  assert.equal([first.created, second.created].filter(Boolean).length, 1);
  assert.equal(third.created, false);
  const batch = await env.client.waitForBatch(first.batchId, { timeoutMs: 60_000 });
  const fourth = await env.client.submitBatch(input); // after completion: still the same batch, nothing restarted
  assert.equal(fourth.batchId, first.batchId);
  const fingerprints = env.fake.createdBatches().filter((info) => info.id === batch.providerBatchId || info.requestCount === 2 && info.provider === 'anthropic');
  assert.equal(fingerprints.filter((info) => info.fingerprint === fingerprints.find((f) => f.id === batch.providerBatchId)!.fingerprint).length, 1);
  assert.equal((await handlerCalls(first.batchId)).length, 1);
  const { count } = await env.temporal.workflow.count(`WorkflowId = '${batch.workflowId}'`);
  assert.equal(count, 1);
});

for (const provider of ['openai', 'anthropic'] as const) test(`${provider} deadline: final status read, provider cancel, partial results kept, status expired, handler told`, async () => {
  const requests = chatRequests(20, `deadline-${provider}`);
  env.fake.configure({ batchRules: [{ match: { customId: `deadline-${provider}-0` }, processingMs: 8000, cancelDelayMs: 100 }] });
  const { batchId } = await env.client.submitBatch({
    provider, model: 'model-x', requests, handler: 'record', pollScheduleMs: [500], maxAgeMs: 3000,
  });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  assert.equal(batch.status, 'expired');
  assert.equal(batch.failureCode, 'deadline_exceeded');
  const counters = env.fake.counters(batch.providerBatchId!)!;
  assert.ok(counters.cancel >= 1, 'cancel was called at the provider');
  const rows = [...(await requestRows(batchId)).values()];
  const succeeded = rows.filter((row) => row.status === 'succeeded').length;
  assert.ok(succeeded > 0 && succeeded < 20, `partial results kept (${succeeded} of 20 succeeded)`);
  assert.equal(rows.filter((row) => row.status === 'pending').length, 0);
  const [call] = await handlerCalls(batchId);
  assert.equal(call.outcome, 'expired');
  assert.equal(call.succeeded, succeeded);
});

test('a non-retryable provider error is not retried and parks the step as a dead letter', async () => {
  const requests = chatRequests(2, 'nonretry');
  const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests, handler: 'record', pollScheduleMs: [1500] });
  const submitted = await waitFor(async () => (await env.client.getBatch(batchId)).batch.providerBatchId);
  env.fake.injectFault({ route: 'openai.batches.retrieve', kind: 'http_error', status: 401, batchId: submitted!, count: 5 });
  const details = await waitFor(async () => {
    const view = await env.client.getBatch(batchId);
    return view.deadLetter ? view : undefined;
  }, 30_000);
  assert.equal(details.deadLetter!.step, 'poll');
  assert.equal(details.deadLetter!.tryCount, 1, 'a 401 is not retried');
  assert.equal(details.deadLetter!.nonRetryable, true);
  assert.equal(details.deadLetter!.errorClass, 'ProviderRejected');
  assert.match(details.deadLetter!.errorMessage, /401/);
  // The letter is committed by an activity; the workflow parks when that activity's result reaches it.
  const state = await waitFor(async () => {
    const current = await env.client.batchState(batchId);
    return current.phase === 'dead_lettered' ? current : undefined;
  }, 10_000, 'the workflow parked (phase dead_lettered)');
  assert.equal(state.phase, 'dead_lettered');
  assert.equal(env.fake.counters(submitted!)!.retrieve, 1);
});

/** Operator actions sent through the client: poll now, cancel, extend the deadline, and clear errors for bad ids. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { NotApplicableError, NotFoundError, ValidationError } from '../client/errors';
import { batchStateQuery } from '../domain/definitions';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';
import { waitFor } from './support/wait';

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({ handlers });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

async function submitted(batchId: string) {
  return waitFor(async () => (await env.client.getBatch(batchId)).batch.providerBatchId, 20_000, 'submission');
}

test('poll now causes an immediate poll instead of waiting for the schedule', async () => {
  // The provider only finishes when the test says so, however slow the machine is.
  env.fake.configure({ batchRules: [{ match: { customId: 'pollnow-0' }, processingMs: 600_000 }] });
  const { batchId } = await env.client.submitBatch({
    provider: 'anthropic', model: 'model-x', requests: chatRequests(2, 'pollnow'), handler: 'record', pollScheduleMs: [3_600_000],
  });
  const providerBatchId = await submitted(batchId);
  assert.ok(env.fake.completeNow(providerBatchId), 'the provider finishes the batch now');
  // The provider id is stored by the submit activity; the workflow plans its next poll once that result reaches it.
  // A one-entry schedule polls on activity retries from the start: the first of them is the next poll.
  const state = await waitFor(async () => {
    const current = await env.client.batchState(batchId);
    return current.pollingByRetries ? current : undefined;
  }, 10_000, 'the workflow planned its next poll');
  assert.ok(Date.parse(state.pollingByRetries!.since) - Date.now() > 3_000_000, 'next scheduled poll is an hour away');
  const before_ = Date.now();
  await env.client.pollNow(batchId);
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 20_000 });
  assert.equal(batch.status, 'ended');
  assert.ok(Date.now() - before_ < 15_000, 'finished long before the scheduled poll');
  assert.equal(batch.pollCount, 1);
});

for (const provider of ['openai', 'anthropic'] as const) test(`${provider} cancel: provider cancel, partial results kept, handler told`, async () => {
  env.fake.configure({ batchRules: [{ match: { customId: `cancel-${provider}-0` }, processingMs: 6000, cancelDelayMs: 200 }] });
  const { batchId } = await env.client.submitBatch({
    provider, model: 'model-x', requests: chatRequests(20, `cancel-${provider}`), handler: 'record', pollScheduleMs: [300],
  });
  const providerBatchId = await submitted(batchId);
  await new Promise((resolve) => setTimeout(resolve, 2500));
  const answer = await env.client.cancelBatch(batchId, 'wrong prompts');
  assert.ok(['in_progress', 'canceled'].includes(answer.status));
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.equal(batch.status, 'canceled');
  assert.ok(env.fake.counters(providerBatchId)!.cancel >= 1);
  const { rows } = await env.pool.query(`SELECT status, count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 GROUP BY status`, [batchId]);
  const counts = Object.fromEntries(rows.map((row) => [row.status, row.n]));
  assert.ok(counts.succeeded > 0 && counts.canceled > 0, `partial results kept: ${JSON.stringify(counts)}`);
  const { rows: calls } = await env.pool.query('SELECT outcome FROM public.handler_calls WHERE batch_id = $1', [batchId]);
  assert.deepEqual(calls, [{ outcome: 'canceled' }]);
  const kinds = (await env.client.getTimeline('batch', batchId)).map((event) => event.kind);
  assert.ok(kinds.includes('cancel_requested'));
  await assert.rejects(env.client.cancelBatch(batchId), NotApplicableError, 'a finished batch cannot be cancelled');
});

test('extend the deadline: the batch is not expired at the old deadline', async () => {
  env.fake.configure({ batchRules: [{ match: { customId: 'extend-0' }, processingMs: 5000 }] });
  const { batchId, workflowId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, 'extend'), handler: 'record', pollScheduleMs: [400], maxAgeMs: 2500,
  });
  await submitted(batchId);
  // The submit activity stores the provider id before it returns; the workflow holds the deadline a moment later.
  await waitFor(async () => (await env.temporal.workflow.getHandle(workflowId).query(batchStateQuery)).deadlineAt, 10_000, 'the workflow to hold its deadline');
  const { batch: beforeExtension } = await env.client.getBatch(batchId);
  await assert.rejects(
    env.client.extendDeadline(batchId, { deadlineAt: new Date(beforeExtension.deadlineAt!.getTime() - 1000).toISOString() }),
    (error: unknown) => error instanceof NotApplicableError && /later than the current one/.test(error.message),
  );
  const { deadlineAt } = await env.client.extendDeadline(batchId, { byMs: 20_000 });
  assert.equal(Date.parse(deadlineAt), beforeExtension.deadlineAt!.getTime() + 20_000);
  assert.equal((await env.client.getBatch(batchId)).batch.deadlineAt!.toISOString(), deadlineAt);
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.equal(batch.status, 'ended', 'completed instead of expiring at the original deadline');
  await assert.rejects(env.client.extendDeadline(batchId, { byMs: 1000 }), NotApplicableError);
});

test('unknown or malformed ids get a clear error and change nothing', async () => {
  const unknown = randomUUID();
  for (const action of [
    () => env.client.getBatch(unknown),
    () => env.client.pollNow(unknown),
    () => env.client.cancelBatch(unknown),
    () => env.client.extendDeadline(unknown, { byMs: 1000 }),
    () => env.client.getJob(unknown),
  ]) {
    await assert.rejects(action(), (error: unknown) => error instanceof NotFoundError && error.message.includes(unknown));
  }
  await assert.rejects(env.client.pollNow("1' OR '1'='1"), (error: unknown) => error instanceof ValidationError && error.field === 'batchId' && /is not a well-formed batch id/.test(error.message));
  await assert.rejects(env.client.extendDeadline(unknown, {}), ValidationError);
  const { rows } = await env.pool.query('SELECT count(*)::int AS n FROM event_log WHERE subject_id = $1', [unknown]);
  assert.equal(rows[0].n, 0);
});

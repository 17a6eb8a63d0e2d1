/**
 * The expiry sweep and its schedule: recover, then expire. Each case breaks a batch the way production does
 * (an operator terminates its workflow) and checks the sweep makes it whole.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BatchHandlerRegistry } from '../activities/handlers';
import type { SweepResult } from '../activities';
import { installSweepSchedule } from '../client/schedules';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers as recordingHandlers } from './support/recording-handlers';
import { waitFor } from './support/wait';

const gate = { handlerWorks: true };
const handlers: BatchHandlerRegistry = {
  record: {
    async onComplete(context) {
      if (!gate.handlerWorks) throw new Error('handler down');
      await recordingHandlers.record.onComplete(context);
    },
  },
};

let env: TestEnvironment;
let sweeps = 0;

before(async () => {
  env = await createTestEnvironment({ handlers, retry: { defaults: { maximumAttempts: 2, initialIntervalMs: 50, maximumIntervalMs: 100 } } });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

function runSweep(): Promise<SweepResult> {
  sweeps += 1;
  return env.temporal.workflow.execute('sweepWorkflow', { taskQueue: env.taskQueue, workflowId: `sweep-test-${env.taskQueue}-${sweeps}`, args: [{}] });
}

async function submittedBatch(prefix: string, options: { processingMs: number; maxAgeMs?: number }) {
  env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, processingMs: options.processingMs }] });
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(10, prefix), handler: 'record', pollScheduleMs: [300], maxAgeMs: options.maxAgeMs,
  });
  await waitFor(async () => (await env.client.getBatch(batchId)).batch.pollCount >= 1, 20_000, 'first poll');
  return (await env.client.getBatch(batchId)).batch;
}

async function handlerCalls(batchId: string) {
  return (await env.pool.query('SELECT outcome, succeeded FROM public.handler_calls WHERE batch_id = $1', [batchId])).rows;
}

test('recovers a batch whose workflow an operator terminated: results collected, handler dispatched', async () => {
  const batch = await submittedBatch('terminated', { processingMs: 1500 });
  await env.temporal.workflow.getHandle(batch.workflowId).terminate('operator terminated by mistake');
  await new Promise((resolve) => setTimeout(resolve, 2000)); // the provider finishes meanwhile
  const result = await runSweep();
  assert.ok(result.recovered >= 1, JSON.stringify(result));
  const done = await env.client.waitForBatch(batch.id, { timeoutMs: 30_000 });
  assert.equal(done.status, 'ended');
  assert.deepEqual(await handlerCalls(batch.id), [{ outcome: 'ended', succeeded: 10 }]);
  const kinds = (await env.client.getTimeline('batch', batch.id)).map((event) => event.kind);
  assert.ok(kinds.includes('sweep_recovered'));
  assert.equal(env.fake.createdBatches().filter((info) => info.batchkeeperBatchId === batch.id).length, 1, 'no second provider batch');
});

test('expires an overdue batch whose workflow is gone, keeping partial results', async () => {
  const batch = await submittedBatch('overdue', { processingMs: 12_000, maxAgeMs: 2500 });
  await env.temporal.workflow.getHandle(batch.workflowId).terminate('lost');
  await new Promise((resolve) => setTimeout(resolve, 3000)); // past the deadline while no workflow watches it
  const result = await runSweep();
  assert.ok(result.recovered >= 1, JSON.stringify(result));
  const done = await env.client.waitForBatch(batch.id, { timeoutMs: 30_000 });
  assert.equal(done.status, 'expired');
  const [call] = await handlerCalls(batch.id);
  assert.equal(call.outcome, 'expired');
  assert.ok(call.succeeded > 0 && call.succeeded < 10, `partial results kept (${call.succeeded})`);
  assert.ok(env.fake.counters(done.providerBatchId!)!.cancel >= 1);
});

test('dispatches a terminal batch whose handler never ran', async () => {
  gate.handlerWorks = false;
  const batch = await submittedBatch('undispatched', { processingMs: 300 });
  await waitFor(async () => (await env.client.getBatch(batch.id)).deadLetter, 20_000, 'dispatch dead-lettered');
  await env.temporal.workflow.getHandle(batch.workflowId).terminate('operator gave up');
  const stuck = (await env.client.getBatch(batch.id)).batch;
  assert.equal(stuck.status, 'ended');
  assert.ok(stuck.resultsFetchedAt && !stuck.handlerDispatchedAt);
  gate.handlerWorks = true;
  const result = await runSweep();
  assert.ok(result.dispatched >= 1, JSON.stringify(result));
  await env.client.waitForBatch(batch.id, { timeoutMs: 30_000 });
  assert.deepEqual(await handlerCalls(batch.id), [{ outcome: 'ended', succeeded: 10 }]);
  const again = await runSweep();
  assert.equal(again.failed, 0);
  assert.deepEqual(await handlerCalls(batch.id), [{ outcome: 'ended', succeeded: 10 }], 'a second sweep changes nothing');
});

test('the sweep schedule installs idempotently: hourly, overlap SKIP, explicit catch-up window', async () => {
  const scheduleId = `sweep-${env.taskQueue}`;
  const first = await installSweepSchedule(env.temporal, { taskQueue: env.taskQueue, scheduleId });
  const second = await installSweepSchedule(env.temporal, { taskQueue: env.taskQueue, scheduleId });
  assert.deepEqual([first.created, second.created], [true, false]);
  const handle = env.temporal.schedule.getHandle(scheduleId);
  try {
    const description = await handle.describe();
    assert.equal(description.policies.overlap, 'SKIP');
    assert.equal(description.policies.catchupWindow, 3_600_000);
    assert.equal(description.spec.intervals?.[0]?.every, 3_600_000);
    assert.equal(description.action.type, 'startWorkflow');
  } finally {
    await handle.delete();
  }
});

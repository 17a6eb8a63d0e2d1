/**
 * Retries with try counts, dead letters and the operator's decisions, for batches and generic jobs, on the real
 * Temporal server and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { BatchkeeperAdmin } from '../client/admin';
import { NotApplicableError } from '../client/errors';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers as recordingHandlers } from './support/recording-handlers';
import { waitFor } from './support/wait';

const dispatchCalls = new Map<string, number>();
const broken = { handler: true, jobs: true };

const handlers: BatchHandlerRegistry = {
  ...recordingHandlers,
  /** Fails its first two calls for each batch, then works. */
  flaky: {
    async onComplete(context) {
      const calls = (dispatchCalls.get(context.batch.id) ?? 0) + 1;
      dispatchCalls.set(context.batch.id, calls);
      if (calls <= 2) throw new Error(`flaky handler failure ${calls}`);
      await recordingHandlers.record.onComplete(context);
    },
  },
  /** Fails until the test "deploys the fix". */
  broken: {
    async onComplete(context) {
      if (broken.handler) throw new TypeError('handler bug: cannot read properties of undefined');
      await recordingHandlers.record.onComplete(context);
    },
    onFailure: recordingHandlers.record.onFailure,
  },
};

let fakeUrl = '';
const jobExecutors: JobExecutorRegistry = {
  /** Calls an HTTP API (the fake provider's batch list); injected connection resets make it fail. */
  'fetch-report': {
    async execute(input) {
      const response = await fetch(`${fakeUrl}/v1/batches?limit=1`, { headers: { authorization: `Bearer ${TEST_API_KEY}` } });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return { input, ok: true };
    },
  },
  'broken-job': {
    async execute() {
      if (broken.jobs) throw new Error('downstream store unavailable');
      return { done: true };
    },
  },
};

let env: TestEnvironment;
let admin: BatchkeeperAdmin;

before(async () => {
  env = await createTestEnvironment({
    handlers,
    jobExecutors,
    retry: {
      defaults: { maximumAttempts: 3, initialIntervalMs: 50, maximumIntervalMs: 200, backoffCoefficient: 2 },
      jobTypes: { 'broken-job': { maximumAttempts: 1 } },
    },
  });
  fakeUrl = env.fake.url;
  admin = new BatchkeeperAdmin(env.temporal, env.pool);
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

async function submit(handler: string, prefix: string) {
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, prefix), handler, pollScheduleMs: FAST_SCHEDULE_MS,
  });
  return batchId;
}

async function deadLettered(batchId: string) {
  return waitFor(async () => (await env.client.getBatch(batchId)).deadLetter, 30_000, `dead letter of ${batchId}`);
}

test('a handler that fails twice then succeeds: try count 3, no dead letter', async () => {
  const batchId = await submit('flaky', 'flaky');
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  assert.ok(batch.handlerDispatchedAt);
  const { steps, deadLetter } = await env.client.getBatch(batchId);
  const dispatch = steps.find((step) => step.step === 'dispatch_handler')!;
  assert.equal(dispatch.attempt, 3);
  assert.equal(dispatch.lastError, 'flaky handler failure 2');
  assert.equal(deadLetter, null);
  assert.equal(dispatchCalls.get(batchId), 3);
});

test('an always-failing handler is dead-lettered after n tries; requeued after the fix, the batch completes', async () => {
  broken.handler = true;
  const batchId = await submit('broken', 'requeue');
  const letter = await deadLettered(batchId);
  assert.equal(letter.step, 'dispatch_handler');
  assert.equal(letter.tryCount, 3);
  assert.equal(letter.errorClass, 'TypeError');
  assert.match(letter.errorMessage, /handler bug/);
  assert.ok(letter.errorStack?.includes('TypeError'));
  assert.ok(letter.firstFailureAt <= letter.lastFailureAt);

  // The letter is committed by an activity; the workflow parks when that activity's result reaches it.
  const state = await waitFor(async () => {
    const current = await env.client.batchState(batchId);
    return current.phase === 'dead_lettered' ? current : undefined;
  }, 10_000, 'the workflow parked (phase dead_lettered)');
  assert.equal(state.deadLetter?.deadLetterId, letter.id);
  const listed = await waitFor(async () => {
    const found = await admin.listWorkflows({ deadLettered: true, taskQueue: env.taskQueue });
    return found.find((summary) => summary.workflowId === letter.workflowId);
  }, 10_000, 'visibility shows the dead-lettered workflow');
  assert.equal(listed.deadLettered, true);
  assert.deepEqual((await admin.checkDeadLetterConsistency({ taskQueue: env.taskQueue })).mismatches, []);
  const failed = await admin.listFailedWork({ deadLetteredOnly: true });
  assert.ok(failed.some((row) => row.subjectId === batchId && row.tryCount === 3 && row.step === 'dispatch_handler'));

  broken.handler = false;
  const result = await admin.requeueDeadLetter(letter.id, { resolvedBy: 'test', retry: { maximumAttempts: 5 } });
  assert.deepEqual(result, { deadLetterId: letter.id, action: 'requeue' });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.ok(batch.handlerDispatchedAt);
  const { rows } = await env.pool.query('SELECT outcome FROM public.handler_calls WHERE batch_id = $1', [batchId]);
  assert.deepEqual(rows, [{ outcome: 'ended' }]);
  const stored = (await admin.listDeadLetters({ subjectId: batchId, includeResolved: true }))[0];
  assert.equal(stored.resolution, 'requeued');
  assert.equal(stored.resolvedBy, 'test');
  const dispatch = (await env.client.getBatch(batchId)).steps.find((step) => step.step === 'dispatch_handler')!;
  assert.equal(dispatch.rounds, 2);
  assert.equal(dispatch.attempt, 1, 'a fresh try count after the requeue');
  await assert.rejects(admin.requeueDeadLetter(letter.id), NotApplicableError, 'a resolved dead letter cannot be requeued twice');
});

test('discarding a dead letter is a final failure and the failure handler is told', async () => {
  broken.handler = true;
  const batchId = await submit('broken', 'discard');
  const letter = await deadLettered(batchId);
  await admin.discardDeadLetter(letter.id, { resolvedBy: 'ops', note: 'bad prompt set' });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.equal(batch.status, 'failed');
  assert.equal(batch.failureCode, 'discarded_dispatch_handler');
  const { rows } = await env.pool.query('SELECT step, error_class FROM public.failure_calls WHERE batch_id = $1', [batchId]);
  assert.deepEqual(rows, [{ step: 'dispatch_handler', error_class: 'TypeError' }]);
  const history = await admin.listDeadLetters({ subjectId: batchId, includeResolved: true });
  assert.equal(history.length, 1, 'the dead letter is kept, not deleted');
  assert.equal(history[0].resolution, 'discarded');
});

test('a generic job that meets connection resets succeeds within its retries', async () => {
  env.fake.injectFault({ route: 'openai.batches.list', kind: 'reset', count: 2 });
  const { jobId } = await env.client.startJob({ type: 'fetch-report', input: { report: 'daily' }, idempotencyKey: 'report-1' });
  const job = await env.client.waitForJob(jobId, { timeoutMs: 30_000 });
  assert.equal(job.status, 'succeeded');
  assert.deepEqual(job.output, { input: { report: 'daily' }, ok: true });
  const { steps, deadLetter } = await env.client.getJob(jobId);
  assert.equal(steps.find((step) => step.step === 'execute')!.attempt, 3);
  assert.equal(deadLetter, null);
  const again = await env.client.startJob({ type: 'fetch-report', input: { report: 'daily' }, idempotencyKey: 'report-1' });
  assert.deepEqual([again.jobId, again.created], [jobId, false]);
});

test('a generic job that never succeeds lands in the dead letters', async () => {
  env.fake.injectFault({ route: 'openai.batches.list', kind: 'reset', count: 1000 });
  try {
    const { jobId } = await env.client.startJob({ type: 'fetch-report', retry: { maximumAttempts: 4, initialIntervalMs: 50 } });
    const letter = await waitFor(async () => (await env.client.getJob(jobId)).deadLetter, 30_000, 'job dead letter');
    assert.equal(letter.step, 'execute');
    assert.equal(letter.tryCount, 4, 'the per-job retry policy applies');
    assert.match(letter.errorMessage, /fetch failed|socket|ECONNRESET/i);
    const { job } = await env.client.getJob(jobId);
    assert.equal(job.status, 'running');
    await admin.discardDeadLetter(letter.id);
    assert.equal((await env.client.waitForJob(jobId, { timeoutMs: 20_000 })).status, 'discarded');
  } finally {
    env.fake.clearFaults();
  }
});

test('bulk requeue of 50 dead letters by filter; next() with a declining callback leaves its dead letter in place', async () => {
  broken.jobs = true;
  const jobs = await Promise.all(Array.from({ length: 50 }, (_, index) => env.client.startJob({ type: 'broken-job', input: { index } })));
  await waitFor(async () => (await admin.listDeadLetters({ typeOrHandler: 'broken-job', limit: 100 })).length === 50, 60_000, '50 dead letters');

  const seen: string[] = [];
  const declined = await admin.nextDeadLetter((letter) => {
    seen.push(letter.id);
    return false;
  }, { filter: { typeOrHandler: 'broken-job' } });
  assert.equal(declined?.popped, false);
  assert.equal((await admin.listDeadLetters({ typeOrHandler: 'broken-job', limit: 100 })).length, 50, 'declined: still there');
  const peeked = await admin.peekDeadLetter({ typeOrHandler: 'broken-job' });
  assert.equal(peeked?.id, seen[0], 'peek shows the same oldest dead letter');

  broken.jobs = false;
  const result = await admin.requeueDeadLetters({ subjectKind: 'job', typeOrHandler: 'broken-job' });
  assert.equal(result.matched, 50);
  assert.equal(result.done.length, 50);
  assert.deepEqual(result.failed, []);
  for (const { jobId } of jobs) {
    assert.equal((await env.client.waitForJob(jobId, { timeoutMs: 30_000 })).status, 'succeeded');
  }
  assert.equal((await admin.listDeadLetters({ typeOrHandler: 'broken-job' })).length, 0);
  assert.equal(await admin.nextDeadLetter(() => true, { filter: { typeOrHandler: 'broken-job' } }), null);
});

test('the consistency check reports a dead letter whose workflow an operator terminated', async () => {
  broken.handler = true;
  const batchId = await submit('broken', 'terminated');
  const letter = await deadLettered(batchId);
  await env.temporal.workflow.getHandle(letter.workflowId).terminate('operator cleanup');
  const report = await admin.checkDeadLetterConsistency({ taskQueue: env.taskQueue });
  const mismatch = report.mismatches.find((entry) => entry.deadLetterId === letter.id);
  assert.ok(mismatch, 'mismatch reported');
  assert.match(mismatch.problem, /not running/);
  broken.handler = false;
});

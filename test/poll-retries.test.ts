/**
 * Polls of the schedule's repeating interval run on retries of one activity (activities/poll-until-change.ts): the
 * server schedules each poll, the workflow wakes only when the status changes, so an open batch costs no workflow
 * task (and no replay on a cache miss) per poll. Checked on a real Temporal server: the histories, what Temporal Web's
 * pending activity shows, and the ways out (status change, poll-now, a failed poll, a refusal).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { temporal } from '@temporalio/proto';
import { BatchkeeperAdmin } from '../client/admin';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { waitFor } from './support/wait';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({ retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 500, maximumAttempts: 3 } } });
});
after(async () => env?.teardown());

async function historyOf(batchId: string): Promise<HistoryEvent[]> {
  const { batch } = await env.client.getBatch(batchId);
  return (await env.temporal.workflow.getHandle(batch.workflowId).fetchHistory()).events ?? [];
}

const activityName = (event: HistoryEvent) => event.activityTaskScheduledEventAttributes?.activityType?.name;

/** Each pollUntilChange activity: the workflow tasks between its scheduling and its end, and the polls it reports. */
function retryWaits(events: HistoryEvent[]) {
  const waits: { workflowTasks: number; polls: number | null; ended: string }[] = [];
  events.forEach((event, index) => {
    if (activityName(event) !== 'pollUntilChange') return;
    const scheduledId = String(event.eventId);
    const endIndex = events.findIndex((later, at) => at > index && [
      later.activityTaskCompletedEventAttributes, later.activityTaskCanceledEventAttributes, later.activityTaskFailedEventAttributes,
    ].some((attrs) => attrs && String(attrs.scheduledEventId) === scheduledId));
    const end = events[endIndex];
    const between = events.slice(index + 1, endIndex < 0 ? undefined : endIndex);
    const payload = end?.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
    waits.push({
      workflowTasks: between.filter((e) => e.workflowTaskCompletedEventAttributes).length,
      polls: payload ? JSON.parse(Buffer.from(payload).toString('utf8')).polls : null,
      ended: !end ? 'running' : end.activityTaskCompletedEventAttributes ? 'completed' : end.activityTaskCanceledEventAttributes ? 'canceled' : 'failed',
    });
  });
  return waits;
}

test('steady polls run on activity retries: no workflow task per poll, the polls and last status in the pending activity', async () => {
  env.fake.configure({ batchRules: [{ match: { customId: 'steady-0' }, processingMs: 7000 }] });
  const { batchId, workflowId } = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(2, 'steady'), pollScheduleMs: [300] });
  // While it runs, Temporal Web's pending activity is the poll loop: its attempt counts polls, its last failure is
  // the last status read (counts only).
  const pending = await waitFor(async () => {
    const description = await env.temporal.workflow.getHandle(workflowId).describe();
    const activity = description.raw.pendingActivities?.find((a) => a.activityType?.name === 'pollUntilChange');
    return activity && (activity.attempt ?? 0) >= 3 ? activity : undefined;
  }, 20_000, 'pollUntilChange pending at its third attempt');
  assert.match(pending.lastFailure?.message ?? '', /at the provider \(\d+\/2 requests done\) after \d+ polls here; next poll at /);
  assert.equal(pending.lastFailure?.applicationFailureInfo?.type, 'BatchStillRunning');

  const done = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.equal(done.status, 'ended');
  const waits = retryWaits(await historyOf(batchId));
  assert.ok(waits.length >= 1, 'polled on activity retries');
  const polls = waits.reduce((sum, wait) => sum + (wait.polls ?? 0), 0);
  assert.ok(polls >= 4, `${polls} polls made on retries`);
  assert.deepEqual(waits.map((wait) => wait.workflowTasks), waits.map(() => 0), 'no workflow task while polls run on retries');
  assert.ok(done.pollCount >= polls, `PostgreSQL counts every poll (${done.pollCount} ≥ ${polls})`);
  // Each poll is a first attempt of the poll step: no try count of a retried step.
  const { steps } = await env.client.getBatch(batchId);
  assert.equal(steps.find((step) => step.step === 'poll')?.attempt, 1);
});

test('a poll-now wakes a batch between two polls on retries: the handler runs without waiting for the interval', async () => {
  env.fake.configure({ batchRules: [{ match: { customId: 'wake-0' }, processingMs: 300 }] });
  const { batchId, workflowId } = await env.client.submitBatch({ provider: 'anthropic', model: 'model-x', requests: chatRequests(2, 'wake'), pollScheduleMs: [600_000] });
  await waitFor(async () => {
    const description = await env.temporal.workflow.getHandle(workflowId).describe();
    return description.raw.pendingActivities?.some((a) => a.activityType?.name === 'pollUntilChange');
  }, 20_000, 'waiting for its first poll on retries');
  const providerBatchId = (await env.client.getBatch(batchId)).batch.providerBatchId!;
  await waitFor(async () => env.fake.batch(providerBatchId)?.phase === 'completed', 10_000, 'the provider batch ended');
  const started = Date.now();
  await env.client.pollNow(batchId);
  const done = await env.client.waitForBatch(batchId, { timeoutMs: 20_000 });
  assert.equal(done.status, 'ended');
  assert.ok(Date.now() - started < 15_000, 'ended long before the 10-minute interval');
  const events = await historyOf(batchId);
  assert.ok(events.some((event) => event.activityTaskCancelRequestedEventAttributes), 'the waiting activity was cancelled');
  assert.equal(retryWaits(events)[0].ended, 'canceled');
});

test('a poll that fails retryably hands over to the regular poll step; a refusal parks the poll step at once', async () => {
  env.fake.configure({ batchRules: [{ match: { customId: 'flaky-0' }, processingMs: 4000 }, { match: { customId: 'refused-0' }, processingMs: 30_000 }] });
  const flaky = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(2, 'flaky'), pollScheduleMs: [300] });
  const providerBatchId = await waitFor(async () => (await env.client.getBatch(flaky.batchId)).batch.providerBatchId);
  await waitFor(async () => (await env.client.getBatch(flaky.batchId)).batch.pollCount >= 2, 20_000, 'polls on retries');
  env.fake.injectFault({ route: 'openai.batches.retrieve', kind: 'http_error', status: 503, batchId: providerBatchId!, count: 1 });
  assert.equal((await env.client.waitForBatch(flaky.batchId, { timeoutMs: 30_000 })).status, 'ended');
  const events = await historyOf(flaky.batchId);
  const names = events.map(activityName).filter(Boolean);
  const handedOver = names.findIndex((name, index) => name === 'pollBatch' && names[index - 1] === 'pollUntilChange');
  assert.ok(handedOver > 0, `a regular poll right after the retries (${names.join(', ')})`);
  const poll = (await env.client.getBatch(flaky.batchId)).steps.find((step) => step.step === 'poll');
  assert.match(poll?.lastError ?? '', /503/, 'the failed poll is recorded');

  const refused = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(2, 'refused'), pollScheduleMs: [300] });
  const refusedId = await waitFor(async () => (await env.client.getBatch(refused.batchId)).batch.providerBatchId);
  await waitFor(async () => (await env.client.getBatch(refused.batchId)).batch.pollCount >= 1, 20_000, 'first poll');
  env.fake.injectFault({ route: 'openai.batches.retrieve', kind: 'http_error', status: 401, batchId: refusedId!, count: 5 });
  const letter = await waitFor(async () => (await env.client.getBatch(refused.batchId)).deadLetter, 20_000, 'dead letter');
  assert.equal(letter.step, 'poll');
  assert.equal(letter.tryCount, 1);
  assert.equal(letter.nonRetryable, true);
  assert.equal(env.fake.counters(refusedId!)!.retrieve - (await env.client.getBatch(refused.batchId)).batch.pollCount, 1, 'the refused read was not repeated');
  // Discarded from the parked retries, the batch ends failed.
  await new BatchkeeperAdmin(env.temporal, env.pool).discardDeadLetter(letter.id);
  assert.equal((await env.client.waitForBatch(refused.batchId, { timeoutMs: 20_000 })).status, 'failed');
});

/**
 * Admission control end to end through the workflow, on the real dev server, PostgreSQL and the fake provider through
 * the official SDKs: batches over their provider/model budget wait `queued` (PostgreSQL, search attribute, query,
 * Temporal Web details, CLI) and are admitted oldest first when capacity frees; a batch the provider refuses for a
 * full queue (OpenAI token_limit_exceeded at validation, Anthropic and Gemini 429 on create) goes back to waiting
 * with backoff and completes instead of failing; follow-up rounds ask again; a cancel while queued sends nothing.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import type { AdmissionConfig } from '../domain/admission';
import { batchStateQuery } from '../domain/definitions';
import { randomUUID } from 'node:crypto';
import { grantInOrder, listAdmissions, lockBudget, openPermits, queuePosition, releasePermits, requestPermit, requeuePermit } from '../db/admissions-store';
import { insertBatch } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { estimateRequestTokens, estimatorFor } from '../activities/token-estimate';
import { loadConfig } from '../config/load';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, sharedWorkflowBundle, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';
import { runCli } from './support/run-cli';
import { waitFor } from './support/wait';

/** A release wakes the next batch by signal: the minute-long recheck would make these tests time out. */
const ADMISSION: AdmissionConfig = {
  budgets: {
    openai: { 'model-adm': { maxOpenBatches: 1 }, 'model-cancel': { maxOpenBatches: 1 } },
    anthropic: { '*': { maxRequests: 4 } },
  },
  recheckMs: 60_000,
  queueLimitBackoff: { initialMs: 400, maxMs: 1500 },
};

let env: TestEnvironment;
/** Workflows of each admission path, replayed at the end (RECORD_HISTORIES=1 adds them to test/fixtures/histories). */
const paths: { name: string; workflowId: string }[] = [];

before(async () => {
  env = await createTestEnvironment({
    handlers,
    admission: ADMISSION,
    fakeProcessingMs: 1500,
    retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 500, maximumAttempts: 5 } },
    extraProviders: (fake) => ({ gemini: { apiKey: TEST_API_KEY, baseURL: fake.geminiBaseUrl, maxRetries: 0 } }),
  });
  await createRecordingTables(env.pool);
});
after(async () => env?.teardown());

async function batchStatus(batchId: string): Promise<string> {
  return (await env.client.getBatch(batchId)).batch.status;
}

async function eventKinds(batchId: string): Promise<string[]> {
  return (await env.client.getTimeline('batch', batchId)).map((event) => event.kind);
}

test('token estimates: a maintained tokenizer for OpenAI families, chars/4 otherwise', () => {
  assert.equal(estimatorFor('gpt-4o-mini'), 'o200k_base');
  assert.equal(estimatorFor('gpt-4-turbo'), 'cl100k_base');
  assert.equal(estimatorFor('claude-3-5-haiku'), 'chars/4');
  const params = { max_tokens: 32, messages: [{ role: 'user', content: 'Hello world, how are you today?' }] };
  // o200k_base, counted as OpenAI's cookbook does: the content (8 tokens) and the role (1), 3 per message, 3 per reply.
  assert.equal(estimateRequestTokens('o200k_base', params), 15);
  assert.equal(estimateRequestTokens('chars/4', params), Math.ceil(JSON.stringify(params).length / 4));
});

test('BATCHKEEPER_ADMISSION is checked at start and gets its defaults', () => {
  const base = { DATABASE_URL: 'postgres://localhost/x' };
  assert.throws(() => loadConfig({ ...base, BATCHKEEPER_ADMISSION: '{"budgets":{"openai":{"gpt-4o":{}}}}' }, ['worker']),
    /BATCHKEEPER_ADMISSION budgets\.openai\.gpt-4o: a budget needs maxEnqueuedTokens, maxRequests or maxOpenBatches/);
  assert.throws(() => loadConfig({ ...base, BATCHKEEPER_ADMISSION: '{"budgets":{"openai":{"gpt-4o":{"maxRequests":-1}}}}' }, ['worker']),
    /BATCHKEEPER_ADMISSION budgets\.openai\.gpt-4o\.maxRequests/);
  const { worker } = loadConfig({ ...base, BATCHKEEPER_ADMISSION: '{"budgets":{"openai":{"gpt-4o":{"maxEnqueuedTokens":90000}}}}' }, ['worker']);
  assert.deepEqual(worker.admission, {
    budgets: { openai: { 'gpt-4o': { maxEnqueuedTokens: 90000 } } }, recheckMs: 30_000, queueLimitBackoff: { initialMs: 60_000, maxMs: 1_800_000 },
  });
});

test('the admission rule in PostgreSQL: tokens and requests counted, strictly oldest first, an oversized batch alone, a refused head holds the line', async () => {
  const budget = { maxEnqueuedTokens: 1000, maxRequests: 10 };
  const ids: string[] = [];
  const ask = async (tokens: number, requests: number) => {
    const id = randomUUID();
    ids.push(id);
    await inTransaction(env.pool, async (db) => {
      await insertBatch(db, {
        id, idempotencyKey: id, workflowId: `batch-${id}`, provider: 'rules', model: 'm', handlerName: null, metadata: {},
        pollScheduleMs: [1000], maxAgeMs: 60_000, requests: chatRequests(1, `rule-${ids.length}`),
      });
      await lockBudget(db, 'rules', 'm', budget);
      await requestPermit(db, { batchId: id, round: 1, provider: 'rules', model: 'm', estimatedTokens: tokens, requests, providerBatches: 1, estimator: 'chars/4' });
    });
    return id;
  };
  const grant = () => inTransaction(env.pool, async (db) => {
    await lockBudget(db, 'rules', 'm', budget);
    return (await grantInOrder(db, 'rules', 'm', budget)).map((granted) => ids.indexOf(granted.batchId));
  });
  const release = async (index: number) => (await inTransaction(env.pool, (db) => releasePermits(db, ids[index]!, 1))).map((granted) => ids.indexOf(granted.batchId));
  await ask(600, 2);
  await ask(600, 2); // does not fit next to the first (1200 tokens)
  await ask(100, 2); // would fit, but an older one waits: strictly oldest first
  assert.deepEqual(await grant(), [0]);
  assert.equal(await queuePosition(env.pool, ids[2]!, 1), 2);
  assert.deepEqual(await release(0), [1, 2], 'a release grants in order, all that fit');
  await ask(5000, 1); // larger than the whole budget: runs alone once nothing is held
  assert.deepEqual(await grant(), []);
  assert.deepEqual(await release(1), []);
  assert.deepEqual(await release(2), [3]);
  await ask(10, 11); // over the request budget next to nothing but itself: waits for the big one
  assert.deepEqual(await grant(), []);
  // The provider refused the big one: it waits again at the head of the queue, and nothing younger passes it.
  const requeue = async (notBefore: Date) => (await inTransaction(env.pool, (db) => requeuePermit(db, ids[3]!, 1, notBefore))).granted.map((granted) => ids.indexOf(granted.batchId));
  assert.deepEqual(await requeue(new Date(Date.now() + 60_000)), []);
  assert.deepEqual(await grant(), [], 'a refused head backs off and holds the line');
  assert.deepEqual(await requeue(new Date(Date.now() - 1)), [3], 'granted again once its backoff passed');
  assert.deepEqual(await release(3), [4]);
  assert.deepEqual(await release(4), []);
  assert.deepEqual((await openPermits(env.pool)).filter((open) => open.provider === 'rules'), []);
  const refused = (await listAdmissions(env.pool, ids[3]!))[0]!;
  assert.equal(refused.queueLimitFailures, 2);
});

test('over budget, batches wait queued (PostgreSQL, search attribute, query, details, CLI) and are admitted oldest first', { timeout: 120_000 }, async () => {
  // The first batch runs until the test has seen the others queued, however slow the machine.
  env.fake.configure({ batchRules: [{ match: { customId: 'adm0-0' }, processingMs: 600_000 }] });
  const ids: string[] = [];
  for (let index = 0; index < 3; index += 1) {
    const { batchId } = await env.client.submitBatch({
      provider: 'openai', model: 'model-adm', requests: chatRequests(2, `adm${index}`), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS,
    });
    ids.push(batchId);
    // Each asks in turn, so the first one holds the permit and the order they asked in is the order of submission.
    await waitFor(async () => (await listAdmissions(env.pool, batchId)).length === 1, 60_000, `batch ${index} asked for admission`);
  }
  const last = ids[2]!;
  paths.push({ name: 'admission-queued', workflowId: `batch-${last}` });
  await waitFor(async () => (await batchStatus(last)) === 'queued' && (await batchStatus(ids[1]!)) === 'queued', 60_000, 'the others queued');
  const handle = env.temporal.workflow.getHandle(`batch-${last}`);
  const state = await handle.query(batchStateQuery);
  assert.equal(state.status, 'queued');
  assert.equal(state.phase, 'queued');
  assert.equal(state.admission?.budget, 'openai/model-adm');
  assert.ok(state.admission?.position !== undefined && state.admission.position >= 1, JSON.stringify(state.admission));
  const metadata = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  assert.match(metadata.currentDetails ?? '', /\*\*Status:\*\* queued \(queued\)/);
  assert.match(metadata.currentDetails ?? '', /Queued for admission:\*\* position \d in the queue of budget openai\/model-adm, about \d+ tokens \(chars\/4\)/);
  await waitFor(async () => {
    const { count } = await env.temporal.workflow.count(`WorkflowId = 'batch-${last}' AND BatchkeeperStatus = 'queued'`);
    return count === 1;
  }, 30_000, 'the search attribute says queued');
  const listed = await runCli(['batches', 'list', '--status', 'queued', '--json'], {
    ...process.env, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS, BATCHKEEPER_TASK_QUEUE: env.taskQueue,
  });
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(JSON.parse(listed.stdout).items.some((item: { batchId?: string; workflowId: string }) => item.workflowId === `batch-${last}`), listed.stdout);

  assert.ok(env.fake.completeNow((await env.client.getBatch(ids[0]!)).batch.providerBatchId!));
  for (const id of ids) assert.equal((await env.client.waitForBatch(id, { timeoutMs: 60_000 })).status, 'ended');
  const permits = (await Promise.all(ids.map((id) => listAdmissions(env.pool, id)))).map((rows) => rows[0]!);
  const byRequest = [...permits].sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime()).map((permit) => permit.batchId);
  const byAdmission = [...permits].sort((a, b) => a.admittedAt!.getTime() - b.admittedAt!.getTime()).map((permit) => permit.batchId);
  assert.deepEqual(byRequest, ids, 'asked in submission order');
  assert.deepEqual(byAdmission, byRequest, 'admitted in the order they asked');
  for (let index = 1; index < permits.length; index += 1) {
    const [before, next] = [permits.find((p) => p.batchId === byAdmission[index - 1])!, permits.find((p) => p.batchId === byAdmission[index])!];
    assert.ok(next.admittedAt!.getTime() >= before.releasedAt!.getTime(), 'one open provider batch at a time');
    // Woken by the release's signal, not by the minute-long recheck.
    assert.ok(next.admittedAt!.getTime() - before.releasedAt!.getTime() < 15_000, `admitted ${next.admittedAt!.getTime() - before.releasedAt!.getTime()} ms after the release`);
  }
  const created = env.fake.createdBatches().filter((info) => info.model === 'model-adm');
  assert.equal(created.length, 3, 'one provider batch each');
  assert.deepEqual((await openPermits(env.pool)).filter((budget) => budget.model === 'model-adm'), [], 'no permit held at the end');
  const kinds = await eventKinds(last);
  assert.ok(kinds.includes('queued') && kinds.includes('admitted'), kinds.join(' '));
  assert.ok(kinds.indexOf('admitted') < kinds.indexOf('submitted'));
});

for (const provider of ['openai', 'anthropic', 'gemini'] as const) {
  test(`${provider}: a batch refused for a full queue backs off and completes instead of failing`, { timeout: 120_000 }, async () => {
    const model = `model-q-${provider}`;
    // Room for one batch of 2 requests at a time (anthropic is also budgeted: 4 requests, more than the provider takes).
    // The first batch runs until the refusal of the second was seen, however slow the machine.
    env.fake.configure({ queueLimits: [{ provider, model, maxRequests: 3 }], batchRules: [{ match: { customId: `${provider}-qa-0` }, processingMs: 600_000 }] });
    const requests = (prefix: string) => provider === 'gemini'
      ? [0, 1].map((index) => ({ customId: `${prefix}-${index}`, params: { contents: [{ role: 'user', parts: [{ text: `hello ${index}` }] }] } }))
      : chatRequests(2, prefix);
    const first = await env.client.submitBatch({ provider, model, requests: requests(`${provider}-qa`), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
    await waitFor(async () => (await env.client.getBatch(first.batchId)).batch.providerBatchId !== null, 60_000, 'the first batch submitted');
    const second = await env.client.submitBatch({ provider, model, requests: requests(`${provider}-qb`), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
    paths.push({ name: `queue-limit-${provider}`, workflowId: second.workflowId });

    await waitFor(async () => (await eventKinds(second.batchId)).includes('queue_limited'), 60_000, 'the refusal seen');
    assert.ok(env.fake.completeNow((await env.client.getBatch(first.batchId)).batch.providerBatchId!));
    for (const { batchId } of [first, second]) {
      const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
      assert.equal(batch.status, 'ended', `${batchId}: ${batch.failureCode} ${batch.failureMessage}`);
      const { rows } = await env.pool.query(`SELECT count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 AND status = 'succeeded' AND attempts = 1`, [batchId]);
      assert.equal(rows[0].n, 2, 'every request succeeded, a refusal not counted as a try');
    }
    const refusals = env.fake.queueRefusals().filter((refusal) => refusal.model === model);
    assert.ok(refusals.length >= 1, 'the fake refused at least once');
    const state = await env.temporal.workflow.getHandle(`batch-${second.batchId}`).query(batchStateQuery);
    assert.equal(state.admission?.refusals, refusals.length);
    assert.match(state.admission?.lastRefusal ?? '', provider === 'openai' ? /^token_limit_exceeded: / : /^queue_limit_exceeded: /);
    const { rows: failed } = await env.pool.query(`SELECT count(*)::int AS n FROM event_log WHERE subject_id = $1 AND to_status = 'failed'`, [second.batchId]);
    if (provider !== 'openai') assert.equal(failed[0].n, 0, 'never failed');
    const accepted = env.fake.createdBatches().filter((info) => info.model === model);
    assert.equal(accepted.length, provider === 'openai' ? 2 + refusals.length : 2, 'refused creates made no batch (OpenAI: failed ones)');
    assert.deepEqual((await openPermits(env.pool)).filter((budget) => budget.provider === provider), [], 'no permit held at the end');
    env.fake.configure({ queueLimits: [] });
  });
}

test('a follow-up round asks for admission again; a cancel while queued sends nothing', { timeout: 120_000 }, async () => {
  env.fake.setOutcomes({ 'round-0': { outcome: 'errored', times: 1 } });
  const rounds = await env.client.submitBatch({
    provider: 'openai', model: 'model-adm', requests: chatRequests(2, 'round'), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS, maxRequestAttempts: 2,
  });
  assert.equal((await env.client.waitForBatch(rounds.batchId, { timeoutMs: 60_000 })).status, 'ended');
  const permits = await listAdmissions(env.pool, rounds.batchId);
  assert.deepEqual(permits.map((permit) => permit.round), [1, 2]);
  assert.ok(permits.every((permit) => permit.releasedAt !== null));
  assert.equal(permits[1]!.requests, 1, 'round 2 asked for its one request');

  // The holder runs until the test ends it, however slow the machine.
  env.fake.configure({ batchRules: [{ match: { customId: 'holder-0' }, processingMs: 600_000 }] });
  const holder = await env.client.submitBatch({ provider: 'openai', model: 'model-cancel', requests: chatRequests(2, 'holder'), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
  await waitFor(async () => (await listAdmissions(env.pool, holder.batchId))[0]?.admittedAt, 60_000, 'the holder admitted');
  const waiting = await env.client.submitBatch({ provider: 'openai', model: 'model-cancel', requests: chatRequests(2, 'waiting'), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS });
  await waitFor(async () => (await batchStatus(waiting.batchId)) === 'queued', 60_000, 'the second batch queued');
  await env.client.cancelBatch(waiting.batchId);
  paths.push({ name: 'admission-canceled-while-queued', workflowId: waiting.workflowId }, { name: 'admission-round-2', workflowId: rounds.workflowId });
  const canceled = await env.client.waitForBatch(waiting.batchId, { timeoutMs: 30_000 });
  assert.equal(canceled.status, 'canceled');
  const { rows } = await env.pool.query(`SELECT status, count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 GROUP BY status`, [waiting.batchId]);
  assert.deepEqual(rows, [{ status: 'canceled', n: 2 }]);
  const holderBatch = (await env.client.getBatch(holder.batchId)).batch;
  assert.ok(env.fake.completeNow(holderBatch.providerBatchId!));
  assert.equal((await env.client.waitForBatch(holder.batchId, { timeoutMs: 60_000 })).status, 'ended');
  assert.equal(env.fake.createdBatches().filter((info) => info.model === 'model-cancel').length, 1, 'nothing sent for the canceled batch');
  const { rows: calls } = await env.pool.query(`SELECT outcome FROM public.handler_calls WHERE batch_id = $1`, [waiting.batchId]);
  assert.deepEqual(calls.map((call) => call.outcome), ['canceled'], 'its handler heard of the cancel');
  assert.deepEqual(await openPermits(env.pool), [], 'no permit held or waiting at the end');
});

test('the histories of every admission path replay on the current code', { timeout: 60_000 }, async () => {
  assert.equal(paths.length, 6);
  const bundle = await sharedWorkflowBundle();
  for (const { name, workflowId } of paths) {
    const history = await env.temporal.workflow.getHandle(workflowId).fetchHistory();
    assert.ok((history.events ?? []).some((event) => event.markerRecordedEventAttributes), `${name}: the admission-control patch marker`);
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
    // As test/replay.test.ts records: new paths only, never overwriting what a running system has.
    const fixture = path.join(__dirname, 'fixtures', 'histories', `${name}-0.json`);
    if (process.env.RECORD_HISTORIES === '1' && !existsSync(fixture)) writeFileSync(fixture, historyToJSON(history));
  }
});

/**
 * Determinism: workflow histories recorded from earlier versions (test/fixtures/histories) and fresh ones from
 * this run must replay on the current workflow code. A change to running workflow logic that breaks this needs
 * patched() (or a new workflow type). Set RECORD_HISTORIES=1 to add histories of paths that have none yet (existing
 * ones are kept).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { BatchkeeperAdmin } from '../client/admin';
import { BATCH_WORKFLOW_TYPE } from '../domain/workflow-ids';
import { batchStartOptions } from '../domain/workflow-start';
import { DEADLINE, STATUS } from '../domain/search-attributes';
import { getBatch, insertBatch } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import type { BatchHandlerRegistry } from '../activities/handlers';
import { chatRequests, createTestEnvironment, sharedWorkflowBundle, type TestEnvironment } from './support/environment';
import { waitFor } from './support/wait';

const FIXTURES = path.join(__dirname, 'fixtures', 'histories');
const gate = { works: false };
const handlers: BatchHandlerRegistry = {
  gated: {
    async onComplete() {
      if (!gate.works) throw new Error('handler not ready');
    },
  },
};

let env: TestEnvironment;
const fresh: { name: string; workflowId: string }[] = [];

before(async () => {
  env = await createTestEnvironment({ handlers, retry: { defaults: { maximumAttempts: 2, initialIntervalMs: 50, maximumIntervalMs: 100 } } });
});
after(async () => env?.teardown());

test('fixture histories from earlier versions replay on the current code', async () => {
  const files = readdirSync(FIXTURES).filter((file) => file.endsWith('.json'));
  assert.ok(files.length >= 8, `expected recorded histories in ${FIXTURES}`);
  const bundle = await sharedWorkflowBundle();
  for (const file of files) {
    const history = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8'));
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, file.replace(/\.json$/, ''));
  }
});

test('fresh histories of every path replay on the current code', { timeout: 150_000 }, async () => {
  // 1. A plain lifecycle with per-request failures.
  gate.works = true;
  env.fake.setOutcomes({ 'replay-ok-1': 'errored', 'replay-ok-2': 'missing' });
  const plain = await env.client.submitBatch({ provider: 'anthropic', model: 'model-x', requests: chatRequests(4, 'replay-ok'), handler: 'gated', pollScheduleMs: [200] });
  await env.client.waitForBatch(plain.batchId, { timeoutMs: 30_000 });
  fresh.push({ name: 'lifecycle-anthropic', workflowId: plain.workflowId });

  // 2. A dead-lettered dispatch, requeued after the fix.
  gate.works = false;
  const parked = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(2, 'replay-dl'), handler: 'gated', pollScheduleMs: [200] });
  const letter = await waitFor(async () => (await env.client.getBatch(parked.batchId)).deadLetter, 30_000, 'dead letter');
  gate.works = true;
  await new BatchkeeperAdmin(env.temporal, env.pool).requeueDeadLetter(letter.id);
  await env.client.waitForBatch(parked.batchId, { timeoutMs: 30_000 });
  fresh.push({ name: 'dead-letter-requeue', workflowId: parked.workflowId });

  // 3. The deadline path (final read, cancel, settle, expired).
  env.fake.configure({ batchRules: [{ match: { customId: 'replay-exp-0' }, processingMs: 8000 }] });
  const expiring = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(3, 'replay-exp'), handler: 'gated', pollScheduleMs: [300], maxAgeMs: 1500 });
  await env.client.waitForBatch(expiring.batchId, { timeoutMs: 30_000 });
  fresh.push({ name: 'deadline-expired', workflowId: expiring.workflowId });

  // 4. Continue-as-new in the middle of polling (forced after 2 polls per run).
  env.fake.configure({ batchRules: [{ match: { customId: 'replay-can-0' }, processingMs: 2500 }] });
  const batchId = randomUUID();
  await inTransaction(env.pool, (db) => insertBatch(db, {
    id: batchId, idempotencyKey: batchId, workflowId: `batch-${batchId}`, provider: 'openai', model: 'model-x', handlerName: 'gated',
    metadata: {}, pollScheduleMs: [300], maxAgeMs: 60_000, requests: chatRequests(2, 'replay-can'),
  }));
  const stored = (await getBatch(env.pool, batchId))!;
  await env.temporal.workflow.start(BATCH_WORKFLOW_TYPE, batchStartOptions(stored, env.taskQueue, { continueAsNewAfterPolls: 2 }));
  const done = await env.client.waitForBatch(batchId, { timeoutMs: 30_000 });
  assert.equal(done.status, 'ended');
  const runs = await env.temporal.workflow.count(`WorkflowId = '${stored.workflowId}' AND WorkflowType = '${BATCH_WORKFLOW_TYPE}'`);
  assert.ok(runs.count >= 2, `the batch continued as new (${runs.count} runs)`);
  fresh.push({ name: 'continue-as-new-first-run', workflowId: stored.workflowId });

  // 5. A follow-up round for a request that errored retryably (the resubmission path).
  env.fake.setOutcomes({ 'replay-round-1': { outcome: 'errored', times: 1 } });
  const resubmitted = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, 'replay-round'), handler: 'gated', pollScheduleMs: [200], maxRequestAttempts: 2,
  });
  assert.equal((await env.client.waitForBatch(resubmitted.batchId, { timeoutMs: 30_000 })).round, 2);
  fresh.push({ name: 'resubmission-round-2', workflowId: resubmitted.workflowId });

  // 6. An operator cancel (Anthropic reports the cancelled batch as ended; we record it as canceled).
  env.fake.configure({ batchRules: [{ match: { customId: 'replay-cancel-0' }, processingMs: 6000, cancelDelayMs: 100 }] });
  const canceled = await env.client.submitBatch({ provider: 'anthropic', model: 'model-x', requests: chatRequests(4, 'replay-cancel'), handler: 'gated', pollScheduleMs: [300] });
  await waitFor(async () => (await env.client.getBatch(canceled.batchId)).batch.pollCount >= 1, 20_000, 'first poll');
  await env.client.cancelBatch(canceled.batchId);
  assert.equal((await env.client.waitForBatch(canceled.batchId, { timeoutMs: 30_000 })).status, 'canceled');
  fresh.push({ name: 'operator-cancel', workflowId: canceled.workflowId });

  // 7. Polls on activity retries after a timer poll, woken once by a poll-now between two of them.
  env.fake.configure({ batchRules: [{ match: { customId: 'replay-retries-0' }, processingMs: 7000 }] });
  const retried = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(2, 'replay-retries'), handler: 'gated', pollScheduleMs: [100, 400] });
  await waitFor(async () => (await env.client.getBatch(retried.batchId)).batch.pollCount >= 3, 20_000, 'polls on retries');
  await env.client.pollNow(retried.batchId);
  assert.equal((await env.client.waitForBatch(retried.batchId, { timeoutMs: 30_000 })).status, 'ended');
  fresh.push({ name: 'polls-on-activity-retries', workflowId: retried.workflowId });

  // 8. The straggler fallback (patched 'straggler-fallback'): cancelled after afterMs, the rest answered synchronously.
  env.fake.configure({ batchRules: [{ match: { customId: 'replay-strag-0' }, processingMs: 60_000, times: 1 }] });
  const straggling = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, 'replay-strag'), handler: 'gated', pollScheduleMs: [300],
    stragglers: { afterMs: 1000, maxRequestsPerSecond: 50 },
  });
  assert.equal((await env.client.waitForBatch(straggling.batchId, { timeoutMs: 30_000 })).status, 'ended');
  fresh.push({ name: 'straggler-fallback', workflowId: straggling.workflowId });

  // 9. A batch of a provider with files: the delete_files step after the handler, behind its patch marker.
  const withFiles = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(2, 'replay-files'), handler: 'gated', pollScheduleMs: [200] });
  await env.client.waitForBatch(withFiles.batchId, { timeoutMs: 30_000 });
  await env.temporal.workflow.getHandle(withFiles.workflowId).result();
  fresh.push({ name: 'lifecycle-openai-files', workflowId: withFiles.workflowId });
  const filesHistory = (await env.temporal.workflow.getHandle(withFiles.workflowId).fetchHistory()).events ?? [];
  assert.equal(filesHistory.filter((event) => event.markerRecordedEventAttributes).length, 2, 'the poll-by-activity-retries and delete-provider-files markers');
  assert.equal(env.fake.files().left.length, 0, 'no file left at the provider');

  const bundle = await sharedWorkflowBundle();
  for (const { name, workflowId } of fresh) {
    const executions = env.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` });
    let index = 0;
    for await (const execution of executions) {
      const history = await env.temporal.workflow.getHandle(workflowId, execution.runId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
      // Recording adds histories of new paths and never overwrites one: old ones are what a running system has.
      const fixture = path.join(FIXTURES, `${name}-${index}.json`);
      if (process.env.RECORD_HISTORIES === '1' && !existsSync(fixture)) {
        mkdirSync(FIXTURES, { recursive: true });
        writeFileSync(fixture, historyToJSON(history));
      }
      index += 1;
    }
    assert.ok(index >= 1, `history of ${name} found`);
  }

  // The batch workflow records one patch marker (polls on activity retries; each marker upserts TemporalChangeVersion
  // too) and shows the deadline with the status change that brings it: one visibility write per status change.
  const lifecycle = fresh.find((run) => run.name === 'lifecycle-anthropic')!;
  const events = (await env.temporal.workflow.getHandle(lifecycle.workflowId).fetchHistory()).events ?? [];
  const markers = events.filter((event) => event.markerRecordedEventAttributes);
  assert.equal(markers.length, 1, 'one patch marker');
  const patchData = markers[0].markerRecordedEventAttributes!.details!['patch-data'].payloads![0].data!;
  assert.equal(JSON.parse(Buffer.from(patchData).toString('utf8')).id, 'poll-by-activity-retries');
  const upserts = events.flatMap((event) => {
    const fields = event.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    return fields ? [Object.keys(fields).sort()] : [];
  });
  assert.deepEqual(upserts, [[DEADLINE.name, STATUS.name].sort(), ['TemporalChangeVersion'], [STATUS.name]]);
});

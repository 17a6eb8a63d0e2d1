/**
 * Retention: with BATCHKEEPER_RETENTION_DAYS set, the scheduled sweep drops the request and result bodies of batches
 * whose handler ran longer ago than that, and keeps everything else (rows, statuses, errors, try counts, tokens,
 * costs, events). Off by default: without the setting the sweep leaves bodies alone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { SweepResult } from '../activities';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, type TestEnvironment } from './support/environment';

let env: TestEnvironment;
let plain: TestEnvironment;
let sweeps = 0;

before(async () => {
  env = await createTestEnvironment({
    retentionDays: 30,
    prices: { models: { openai: { 'kept-model': { inputPerMTokUsd: 2, outputPerMTokUsd: 8 } } } },
    retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 300, maximumAttempts: 3 } },
  });
  plain = await createTestEnvironment({ retry: { defaults: { initialIntervalMs: 100, maximumIntervalMs: 300, maximumAttempts: 3 } } });
});
after(async () => {
  await env?.teardown();
  await plain?.teardown();
});

function runSweep(target: TestEnvironment): Promise<SweepResult> {
  sweeps += 1;
  return target.temporal.workflow.execute('sweepWorkflow', { taskQueue: target.taskQueue, workflowId: `sweep-retention-${target.taskQueue}-${sweeps}`, args: [{}] });
}

async function finishedBatch(target: TestEnvironment, prefix: string): Promise<string> {
  target.fake.setOutcomes({ [`${prefix}-2`]: 'invalid' });
  const { batchId } = await target.client.submitBatch({ provider: 'openai', model: 'kept-model', requests: chatRequests(3, prefix), pollScheduleMs: FAST_SCHEDULE_MS });
  await target.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  return batchId;
}

async function snapshot(target: TestEnvironment, batchId: string) {
  const { rows: requests } = await target.pool.query(
    `SELECT custom_id, params, status, result, error_code, error_message, attempts, input_tokens, output_tokens, cost_usd::text
       FROM request_outcomes WHERE batch_id = $1 ORDER BY position`, [batchId],
  );
  const { rows: [batch] } = await target.pool.query(
    'SELECT status, input_tokens, output_tokens, cost_usd::text, handler_dispatched_at, bodies_purged_at FROM batches WHERE id = $1', [batchId],
  );
  const { rows: steps } = await target.pool.query('SELECT step, attempt, total_attempts FROM step_attempts WHERE subject_id = $1 ORDER BY step', [batchId]);
  const { rows: events } = await target.pool.query('SELECT kind FROM event_log WHERE subject_id = $1 ORDER BY id', [batchId]);
  return { requests, batch, steps, events: events.map((row) => row.kind as string) };
}

const backdate = (target: TestEnvironment, batchId: string, days: number) =>
  target.pool.query(`UPDATE batches SET handler_dispatched_at = now() - make_interval(days => $2) WHERE id = $1`, [batchId, days]);

test('the sweep drops bodies older than the retention and keeps rows, statuses, errors, try counts, tokens, costs and events', { timeout: 120_000 }, async () => {
  const old = await finishedBatch(env, 'old');
  const recent = await finishedBatch(env, 'recent');
  await backdate(env, old, 31);
  await backdate(env, recent, 29);
  const before = await snapshot(env, old);
  assert.ok(before.requests.every((row) => Object.keys(row.params).length > 0), 'bodies stored');
  assert.equal(before.requests.filter((row) => row.result !== null).length, 2);

  const result = await runSweep(env);
  assert.equal(result.bodiesPurged, 1, 'one batch past the retention');

  const afterPurge = await snapshot(env, old);
  assert.ok(afterPurge.requests.every((row) => Object.keys(row.params).length === 0 && row.result === null), 'bodies dropped');
  const strip = (rows: Record<string, unknown>[]) => rows.map(({ params: _p, result: _r, ...rest }) => rest);
  assert.deepEqual(strip(afterPurge.requests), strip(before.requests), 'ids, statuses, errors, attempts, tokens, costs kept');
  assert.equal(afterPurge.requests[2]!.error_code !== null, true, 'the errored request keeps its error');
  assert.deepEqual({ ...afterPurge.batch, bodies_purged_at: null }, { ...before.batch, bodies_purged_at: null });
  assert.ok(afterPurge.batch.bodies_purged_at instanceof Date);
  assert.deepEqual(afterPurge.steps, before.steps, 'try counts kept');
  assert.deepEqual(afterPurge.events, [...before.events, 'bodies_purged']);

  const untouched = await snapshot(env, recent);
  assert.ok(untouched.requests.every((row) => Object.keys(row.params).length > 0), 'a batch inside the retention keeps its bodies');
  assert.equal(untouched.batch.bodies_purged_at, null);

  const again = await runSweep(env);
  assert.equal(again.bodiesPurged, 0, 'a purged batch is not purged again');
  const page = await env.client.listResults(old, { limit: 10 });
  assert.equal(page.items.length, 3, 'the rows are still listed');
});

test('off by default: without BATCHKEEPER_RETENTION_DAYS the sweep keeps every body', { timeout: 120_000 }, async () => {
  const batchId = await finishedBatch(plain, 'kept');
  await backdate(plain, batchId, 3650);
  const result = await runSweep(plain);
  assert.equal(result.bodiesPurged, undefined);
  const { requests, batch } = await snapshot(plain, batchId);
  assert.ok(requests.every((row) => Object.keys(row.params).length > 0));
  assert.equal(requests.filter((row) => row.result !== null).length, 2);
  assert.equal(batch.bodies_purged_at, null);
});

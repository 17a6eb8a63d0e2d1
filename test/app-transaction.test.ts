/**
 * An app creates a batch or job atomically with its own rows: submitBatch and startJob write inside the app's open
 * transaction (the app's search path is left as it was), nothing is started before the commit, a rollback leaves no
 * trace, and a crash between the commit and the start is repaired by the recovery sweep.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Pool, type PoolClient } from 'pg';
import type { SweepResult } from '../activities';
import { NotFoundError } from '../client/errors';
import { SWEEP_WORKFLOW_TYPE } from '../domain/workflow-ids';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

let env: TestEnvironment;
/** The app's own pool: plain pg, the database's default search path. */
let appPool: Pool;

before(async () => {
  env = await createTestEnvironment({ handlers, jobExecutors: { echo: { async execute(input) { return input; } } } });
  await createRecordingTables(env.pool);
  appPool = new Pool({ connectionString: env.databaseUrl, max: 2 });
  await appPool.query('CREATE TABLE IF NOT EXISTS public.orders (id serial PRIMARY KEY, batch_id uuid, job_id uuid)');
});
after(async () => {
  await appPool?.end();
  await env?.teardown();
});

async function inAppTransaction<T>(fn: (db: PoolClient) => Promise<T>, end: 'COMMIT' | 'ROLLBACK'): Promise<T> {
  const db = await appPool.connect();
  try {
    await db.query('BEGIN');
    const result = await fn(db);
    await db.query(end);
    return result;
  } finally {
    db.release();
  }
}

const input = (prefix: string) => ({
  provider: 'openai', model: 'model-x', requests: chatRequests(3, prefix), handler: 'record', pollScheduleMs: [300], idempotencyKey: `${prefix}-key`,
});

async function workflowExists(workflowId: string): Promise<boolean> {
  return env.temporal.workflow.getHandle(workflowId).describe().then(() => true, () => false);
}

test('rolled back with the app\'s rows: no batch, no workflow', async () => {
  const submitted = await inAppTransaction(async (db) => {
    const result = await env.client.submitBatch(input('rolled-back'), { transaction: db });
    await db.query('INSERT INTO orders (batch_id) VALUES ($1)', [result.batchId]);
    return result;
  }, 'ROLLBACK');
  assert.equal(submitted.started, false);
  await assert.rejects(env.client.getBatch(submitted.batchId), NotFoundError);
  assert.equal((await appPool.query('SELECT count(*)::int AS n FROM orders')).rows[0].n, 0);
  assert.equal(await workflowExists(submitted.workflowId), false);
});

test('committed with the app\'s rows, started after the commit; the app\'s search path is untouched', async () => {
  const { submitted, pathBefore, pathAfter } = await inAppTransaction(async (db) => {
    const before = (await db.query('SHOW search_path')).rows[0].search_path;
    const result = await env.client.submitBatch(input('committed'), { transaction: db });
    const after = (await db.query('SHOW search_path')).rows[0].search_path;
    await db.query('INSERT INTO orders (batch_id) VALUES ($1)', [result.batchId]);
    return { submitted: result, pathBefore: before, pathAfter: after };
  }, 'COMMIT');
  assert.equal(pathAfter, pathBefore);
  assert.equal(await workflowExists(submitted.workflowId), false, 'not started inside the transaction');
  await env.client.startBatchWorkflow(submitted.batchId);
  const batch = await env.client.waitForBatch(submitted.batchId, { timeoutMs: 30_000 });
  assert.equal(batch.status, 'ended');
  assert.deepEqual((await env.pool.query('SELECT outcome FROM public.handler_calls WHERE batch_id = $1', [batch.id])).rows, [{ outcome: 'ended' }]);
  // The same key in a later transaction finds the stored batch.
  const again = await inAppTransaction((db) => env.client.submitBatch(input('committed'), { transaction: db }), 'COMMIT');
  assert.deepEqual([again.batchId, again.created], [submitted.batchId, false]);
});

test('a failure inside the app\'s transaction rolls back only batchkeeper\'s writes: the app\'s transaction goes on', async () => {
  // The database refuses the second request row (a trigger stands in for any failure validation cannot foresee).
  await env.pool.query(`CREATE FUNCTION refuse_request() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN IF NEW.custom_id = 'refused' THEN RAISE EXCEPTION 'refused by the database'; END IF; RETURN NEW; END $$`);
  await env.pool.query('CREATE TRIGGER refuse_request BEFORE INSERT ON batch_requests FOR EACH ROW EXECUTE FUNCTION refuse_request()');
  try {
    const refused = { ...input('refused'), requests: [{ customId: 'fine', params: {} }, { customId: 'refused', params: {} }] };
    await inAppTransaction(async (db) => {
      await db.query('INSERT INTO orders (batch_id) VALUES (NULL)');
      await assert.rejects(env.client.submitBatch(refused, { transaction: db }), /refused by the database/);
      await db.query('INSERT INTO orders (batch_id) VALUES (NULL)');
    }, 'COMMIT');
  } finally {
    await env.pool.query('DROP TRIGGER refuse_request ON batch_requests');
    await env.pool.query('DROP FUNCTION refuse_request()');
  }
  assert.equal((await appPool.query('SELECT count(*)::int AS n FROM orders WHERE batch_id IS NULL')).rows[0].n, 2, 'both app rows committed');
  assert.equal((await env.pool.query(`SELECT count(*)::int AS n FROM batches WHERE idempotency_key = 'refused-key'`)).rows[0].n, 0, 'no half batch');
});

test('the app dies between its commit and the start: the sweep starts the batch and the job', async () => {
  const { batch, job } = await inAppTransaction(async (db) => ({
    batch: await env.client.submitBatch(input('orphaned'), { transaction: db }),
    job: await env.client.startJob({ type: 'echo', input: { n: 1 } }, { transaction: db }),
  }), 'COMMIT');
  // ...and never calls startBatchWorkflow / startJobWorkflow.
  assert.equal(await workflowExists(batch.workflowId), false);
  const result = await env.temporal.workflow.execute<(input: { limit?: number }) => Promise<SweepResult>>(SWEEP_WORKFLOW_TYPE, {
    taskQueue: env.taskQueue, workflowId: `sweep-app-transaction-${env.taskQueue}`, args: [{}],
  });
  assert.ok(result.recovered >= 1 && result.jobsRecovered >= 1, JSON.stringify(result));
  assert.equal((await env.client.waitForBatch(batch.batchId, { timeoutMs: 30_000 })).status, 'ended');
  assert.equal((await env.client.waitForJob(job.jobId, { timeoutMs: 30_000 })).status, 'succeeded');
  const kinds = (await env.client.getTimeline('batch', batch.batchId)).map((event) => event.kind);
  assert.ok(kinds.includes('sweep_recovered'), kinds.join(','));
});

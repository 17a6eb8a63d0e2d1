/**
 * A worker whose PostgreSQL pool is smaller than the number of batches finishing at once: every completion handler
 * reads its results while it writes the app's table. A dispatch holds one connection for its transaction and pages the
 * results on that same connection, so the dispatches beyond the pool's size wait their turn; when results were paged
 * through a second connection, two dispatches on a pool of two each held one and waited for another forever. And a
 * connection that dies while checked out must fail only its own query, not end the worker process.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import type { Pool } from 'pg';
import { createPool } from '../db/pool';
import { createProviders } from '../providers/registry';
import { createBatchkeeperWorker } from '../worker/create-worker';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, sharedWorkflowBundle, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

const POOL_MAX = 2;
const BATCHES = 6;

let env: TestEnvironment;
let smallPool: Pool;
let worker: Worker;
let running: Promise<void>;

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  await createRecordingTables(env.pool);
  smallPool = createPool(env.databaseUrl, { max: POOL_MAX });
  worker = await createBatchkeeperWorker({
    connection: env.nativeConnection,
    taskQueue: env.taskQueue,
    pool: smallPool,
    providers: createProviders({ openai: { apiKey: TEST_API_KEY, baseURL: env.fake.openaiBaseUrl, maxRetries: 0 } }),
    handlers,
    workflowBundle: await sharedWorkflowBundle(),
  });
  running = worker.run();
});

after(async () => {
  worker?.shutdown();
  await running;
  await smallPool?.end();
  await env?.teardown();
});

test(`${BATCHES} handlers that page their results finish on a pool of ${POOL_MAX} connections`, { timeout: 120_000 }, async () => {
  // Every batch finishes at the provider at the same moment, so their dispatches run together.
  env.fake.configure({ processingMs: 1500 });
  const submitted = await Promise.all(Array.from({ length: BATCHES }, (_, index) =>
    env.client.submitBatch({ provider: 'openai', model: 'gpt-pool', requests: chatRequests(7, `pool-${index}`), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS })));
  for (const { batchId } of submitted) assert.equal((await env.client.waitForBatch(batchId, { timeoutMs: 60_000 })).status, 'ended');
  const { rows } = await env.pool.query('SELECT batch_id, results_seen FROM public.handler_calls');
  assert.equal(rows.length, BATCHES, 'every handler ran once');
  assert.ok(rows.every((row) => row.results_seen === 7), 'each read all 7 results in pages of 2');
});

test('a checked-out connection whose backend is terminated fails its query and leaves the process and pool running', async () => {
  const client = await smallPool.connect();
  const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
  await env.pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
  // Without a listener on the client, the 'error' it emits here is uncaught and ends the worker process.
  await new Promise((resolve) => setTimeout(resolve, 300));
  await assert.rejects(client.query('SELECT 1'), /not queryable|terminat/);
  client.release(true);
  assert.equal((await smallPool.query('SELECT 1 AS one')).rows[0].one, 1);
});

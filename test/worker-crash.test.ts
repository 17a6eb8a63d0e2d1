/**
 * A worker process killed with SIGKILL while a batch is polling, and started again later: the batch completes from
 * its durable timers alone (no sweep), with one provider batch and one handler dispatch.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chatRequests, createTestEnvironment, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { createRecordingTables } from './support/recording-handlers';

const ROOT = path.resolve(__dirname, '..');
let env: TestEnvironment;
const workers: ChildProcess[] = [];

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  await createRecordingTables(env.pool);
});
after(async () => {
  for (const worker of workers) worker.kill('SIGKILL');
  await env?.teardown();
});

/** Starts `worker/main.ts` as its own process, configured only through the environment like a deployment. */
async function startWorkerProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker', 'main.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: env.databaseUrl,
      TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
      BATCHKEEPER_TASK_QUEUE: env.taskQueue,
      OPENAI_API_KEY: TEST_API_KEY,
      OPENAI_BASE_URL: env.fake.openaiBaseUrl,
      BATCHKEEPER_HANDLERS_MODULE: path.join(ROOT, 'test', 'support', 'recording-handlers.ts'),
    },
  });
  workers.push(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('worker polling task queue')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}:\n${output}`)));
  });
  return child;
}

test('a batch survives its worker being SIGKILLed mid-poll', { timeout: 180_000 }, async () => {
  const first = await startWorkerProcess();
  env.fake.configure({ batchRules: [{ match: { customId: 'crash-0' }, processingMs: 4000 }] });
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(4, 'crash'), handler: 'record', pollScheduleMs: [700],
  });
  // Kill once the poll loop is running (at least one poll done, the next one waiting on its durable timer).
  for (;;) {
    const { batch } = await env.client.getBatch(batchId);
    if (batch.pollCount >= 1) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));
  const pollsAtKill = (await env.client.getBatch(batchId)).batch.pollCount;
  await new Promise((resolve) => setTimeout(resolve, 4500)); // the provider finishes while no worker runs
  const whileDown = (await env.client.getBatch(batchId)).batch;
  assert.equal(whileDown.handlerDispatchedAt, null, 'nothing progressed without a worker');
  assert.ok(whileDown.pollCount <= pollsAtKill + 1);

  await startWorkerProcess();
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 90_000 });
  assert.equal(batch.status, 'ended');
  const created = env.fake.createdBatches().filter((info) => info.batchkeeperBatchId === batchId);
  assert.equal(created.length, 1, 'one provider batch');
  const { rows: calls } = await env.pool.query('SELECT * FROM public.handler_calls WHERE batch_id = $1', [batchId]);
  assert.equal(calls.length, 1, 'one handler dispatch');
  assert.equal(calls[0].succeeded, 4);
  const kinds = (await env.client.getTimeline('batch', batchId)).map((event) => event.kind);
  assert.ok(!kinds.some((kind) => kind.startsWith('sweep')), 'no sweep was involved');
  const { rows } = await env.pool.query(`SELECT count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 AND status = 'succeeded'`, [batchId]);
  assert.equal(rows[0].n, 4);
});

/**
 * Admission permits survive a worker SIGKILLed while batches are admitted and queued: permits are rows of a batch in
 * PostgreSQL, so none is lost or leaked. A new worker process admits the queued batches in the order they asked,
 * one open provider batch at a time as the budget says, every batch completes once, and no permit is held at the end.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { listAdmissions, openPermits, type AdmissionRecord } from '../db/admissions-store';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, type TestEnvironment } from './support/environment';
import { createRecordingTables } from './support/recording-handlers';
import { startStockWorker, stockWorkerEnv, type StockWorker } from './support/stock-worker';
import { waitFor } from './support/wait';

const BATCHES = 5;
const workers: StockWorker[] = [];
let env: TestEnvironment;

before(async () => {
  env = await createTestEnvironment({ startWorker: false, fakeProcessingMs: 2000 });
  await createRecordingTables(env.pool);
});
after(async () => {
  for (const worker of workers) worker.child.kill('SIGKILL');
  await env?.teardown();
});

function startWorker(): Promise<StockWorker> {
  return startStockWorker(stockWorkerEnv(env, {
    BATCHKEEPER_HANDLERS_MODULE: path.join(__dirname, 'support', 'recording-handlers.ts'),
    // The recheck is the fallback when a release's signal was lost with its worker.
    BATCHKEEPER_ADMISSION: JSON.stringify({ budgets: { openai: { 'model-kill': { maxOpenBatches: 1 } } }, recheckMs: 2000 }),
  })).then((worker) => {
    workers.push(worker);
    return worker;
  });
}

async function permits(ids: string[]): Promise<AdmissionRecord[]> {
  return (await Promise.all(ids.map((id) => listAdmissions(env.pool, id)))).flat();
}

test('queued batches are admitted in order after their worker is SIGKILLed; no permit is lost or leaked', { timeout: 240_000 }, async () => {
  // The second batch runs until the test ends it, so the kill finds it holding the permit however slow the machine.
  env.fake.configure({ batchRules: [{ match: { customId: 'kill1-0' }, processingMs: 600_000 }] });
  const first = await startWorker();
  const ids: string[] = [];
  for (let index = 0; index < BATCHES; index += 1) {
    const { batchId } = await env.client.submitBatch({
      provider: 'openai', model: 'model-kill', requests: chatRequests(2, `kill${index}`), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS,
    });
    ids.push(batchId);
    // Each asks in turn, so the order they asked in is the order they were submitted in.
    await waitFor(async () => (await listAdmissions(env.pool, batchId)).length === 1, 20_000, `batch ${index} asked for admission`);
  }
  // Kill while one batch holds the permit (the second) and the rest wait for it.
  await waitFor(async () => {
    const rows = await permits(ids);
    const held = rows.some((row) => row.batchId === ids[1] && row.admittedAt && !row.releasedAt);
    return held && (await env.client.getBatch(ids[1]!)).batch.providerBatchId !== null;
  }, 90_000, 'the second batch admitted and submitted');
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  const atKill = await permits(ids);
  const heldAtKill = atKill.filter((row) => row.admittedAt && !row.releasedAt).length;
  const waitingAtKill = atKill.filter((row) => !row.admittedAt).length;
  assert.equal(heldAtKill, 1, 'one permit held at the kill');
  assert.ok(waitingAtKill >= 2, `batches still queued at the kill: ${waitingAtKill}`);
  for (const id of ids.slice(2)) assert.equal((await env.client.getBatch(id)).batch.status, 'queued');
  // The admitted batch finishes at the provider while no worker runs.
  assert.ok(env.fake.completeNow((await env.client.getBatch(ids[1]!)).batch.providerBatchId!));
  await new Promise((resolve) => setTimeout(resolve, 2000));

  const restartedAt = Date.now();
  await startWorker();
  const readyAt = Date.now();
  for (const id of ids) {
    const batch = await env.client.waitForBatch(id, { timeoutMs: 120_000 });
    assert.equal(batch.status, 'ended', `${id}: ${batch.failureCode}`);
  }
  const rows = await permits(ids);
  assert.equal(rows.length, BATCHES, 'one permit per batch');
  const asked = [...rows].sort((a, b) => a.requestedAt.getTime() - b.requestedAt.getTime()).map((row) => row.batchId);
  const admitted = [...rows].sort((a, b) => a.admittedAt!.getTime() - b.admittedAt!.getTime()).map((row) => row.batchId);
  assert.deepEqual(asked, ids, 'asked in submission order');
  assert.deepEqual(admitted, ids, 'admitted in the order they asked');
  for (let index = 1; index < BATCHES; index += 1) {
    const before = rows.find((row) => row.batchId === ids[index - 1])!;
    const next = rows.find((row) => row.batchId === ids[index])!;
    assert.ok(next.admittedAt!.getTime() >= before.releasedAt!.getTime(), `batch ${index} admitted only after batch ${index - 1} released`);
  }
  assert.deepEqual(await openPermits(env.pool), [], 'no permit held or waiting at the end');
  for (const id of ids) {
    assert.equal(env.fake.createdBatches().filter((info) => info.batchkeeperBatchId === id).length, 1, 'one provider batch per batch');
    const { rows: calls } = await env.pool.query('SELECT outcome, succeeded FROM public.handler_calls WHERE batch_id = $1', [id]);
    assert.deepEqual(calls, [{ outcome: 'ended', succeeded: 2 }], 'one handler dispatch per batch');
  }
  const afterKill = rows.filter((row) => row.admittedAt!.getTime() >= restartedAt).length;
  const firstAfter = Math.min(...rows.filter((row) => row.admittedAt!.getTime() >= restartedAt).map((row) => row.admittedAt!.getTime()));
  console.log(`[figure] queued batches admitted in order after a kill: ${BATCHES}/${BATCHES} in requested order `
    + `(${waitingAtKill} queued and ${heldAtKill} holding the permit at the kill; ${afterKill} admitted after the restart, the first `
    + `${((firstAfter - readyAt) / 1000).toFixed(1)} s after the new worker polled, which took ${((readyAt - restartedAt) / 1000).toFixed(1)} s to start); `
    + 'permits held at the end: 0');
});

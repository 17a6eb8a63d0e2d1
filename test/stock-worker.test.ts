/**
 * The stock worker (worker/main.ts) configured only through the environment: the settings it reads reach what they
 * configure, and a wrong value stops it at start with the variable named.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { runStockWorkerToExit, startStockWorker, stockWorkerEnv, type StockWorker } from './support/stock-worker';

let env: TestEnvironment;
let worker: StockWorker | undefined;

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
});
after(async () => {
  await worker?.stop();
  await env?.teardown();
});

test('BATCHKEEPER_PRICES prices the batch: cost_usd from the stored tokens at the discounted list price', { timeout: 180_000 }, async () => {
  const prices = { batchDiscount: 0.5, models: { openai: { 'model-priced': { inputPerMTokUsd: 2, outputPerMTokUsd: 8 } } } };
  worker = await startStockWorker(stockWorkerEnv(env, { BATCHKEEPER_PRICES: JSON.stringify(prices) }));
  const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'model-priced', requests: chatRequests(3, 'priced'), pollScheduleMs: [300] });
  const batch = await env.client.waitForBatch(batchId, { timeoutMs: 90_000 });
  assert.equal(batch.status, 'ended');
  const { rows } = await env.pool.query(
    'SELECT sum(input_tokens)::int AS input, sum(output_tokens)::int AS output FROM request_outcomes WHERE batch_id = $1', [batchId],
  );
  assert.ok(rows[0].input > 0 && rows[0].output > 0, 'the fake reported token usage');
  const expected = (rows[0].input * 2 * 0.5 + rows[0].output * 8 * 0.5) / 1_000_000;
  assert.ok(batch.costUsd !== null, 'cost_usd is set');
  assert.ok(Math.abs(batch.costUsd - expected) < 1e-8, `cost ${batch.costUsd} = ${expected}`);
  await worker.stop();
  worker = undefined;
});

/** A port that accepts connections and never answers: Temporal is unreachable there. */
async function silentPort(): Promise<{ address: string; server: Server }> {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

test('BATCHKEEPER_STARTUP_TIMEOUT_MS: the worker gives up waiting for Temporal after it; a non-number stops it at once', { timeout: 120_000 }, async () => {
  const { address, server } = await silentPort();
  try {
    const bounded = await runStockWorkerToExit(stockWorkerEnv(env, { TEMPORAL_ADDRESS: address, BATCHKEEPER_STARTUP_TIMEOUT_MS: '1500' }));
    assert.equal(bounded.code, 1);
    assert.match(bounded.output, /Temporal still unavailable after 1500 ms/);

    const wrong = await runStockWorkerToExit(stockWorkerEnv(env, { TEMPORAL_ADDRESS: address, BATCHKEEPER_STARTUP_TIMEOUT_MS: 'two minutes' }));
    assert.equal(wrong.code, 1);
    assert.match(wrong.output, /BATCHKEEPER_STARTUP_TIMEOUT_MS must be a whole number from 0 to 86400000 \(got "two minutes"\)/);
    assert.doesNotMatch(wrong.output, /waiting for/, 'it did not start waiting for anything');
  } finally {
    server.close();
  }
});

test('several wrong values are named together and nothing starts', { timeout: 60_000 }, async () => {
  const result = await runStockWorkerToExit(stockWorkerEnv(env, {
    BATCHKEEPER_PG_POOL_MAX: '0', BATCHKEEPER_PRICES: '{"models":', BATCHKEEPER_INSTALL_SCHEDULES: 'yes', DATABASE_URL: 'not a url',
  }));
  assert.equal(result.code, 1);
  for (const expected of [
    /BATCHKEEPER_PG_POOL_MAX must be at least 1 \(got "0"\)/,
    /BATCHKEEPER_PRICES must be JSON/,
    /BATCHKEEPER_INSTALL_SCHEDULES must be 0 or 1/,
    /DATABASE_URL must be a postgres:\/\/ URL/,
  ]) assert.match(result.output, expected);
  assert.doesNotMatch(result.output, /not a url/, 'the database URL (a secret) is not echoed');
});

/**
 * Metrics as an operator's Prometheus sees them: two stock workers on the cluster, each serving its Prometheus
 * endpoint, scraped every second by a real Prometheus (Debian's package). Batches of both providers, one with failed
 * requests, and a job that is dead-lettered run through them; then PromQL over what Prometheus stored must agree
 * with PostgreSQL (gauges as `max` across workers, counters as `sum`) and with Temporal's own count of completions.
 * The scrape of one worker is kept in test-output/cluster-metrics-sample.txt.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../../tools/dev/dev-server';
import { startPrometheus, WORKERS_JOB, type Prometheus } from '../../tools/cluster/prometheus';
import { METRIC_NAMES } from '../../worker/metrics';
import { freshNamespace } from '../support/cluster';
import { createTestEnvironment, type TestEnvironment } from '../support/environment';
import { startStockWorker, stockWorkerEnv, type StockWorker } from '../support/stock-worker';
import { waitFor } from '../support/wait';

const ROOT = path.resolve(__dirname, '..', '..');
const BATCHES = { openai: 6, anthropic: 4 };

let env: TestEnvironment;
let namespace: string;
let dir: string;
let prometheus: Prometheus;
const workers: StockWorker[] = [];
const endpoints: string[] = [];

before(async () => {
  namespace = await freshNamespace('bk-metrics');
  env = await createTestEnvironment({ startWorker: false, namespace });
  for (let index = 0; index < 2; index += 1) {
    const address = `127.0.0.1:${await freePort()}`;
    endpoints.push(address);
    workers.push(await startStockWorker(stockWorkerEnv(env, {
      TEMPORAL_NAMESPACE: namespace,
      BATCHKEEPER_METRICS_ADDRESS: address,
      BATCHKEEPER_HANDLERS_MODULE: path.join(ROOT, 'test', 'support', 'observed-handlers.ts'),
      BATCHKEEPER_RETRY_DEFAULTS: JSON.stringify({ maximumAttempts: 2, initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 200 }),
    })));
  }
  dir = mkdtempSync(path.join(os.tmpdir(), 'bk-prometheus-'));
  prometheus = await startPrometheus({ targets: endpoints, dir });

  env.fake.setOutcomes({ 'metrics-0': 'invalid', 'metrics-1': 'errored' });
  const requests = Array.from({ length: 5 }, (_, index) => ({
    customId: `metrics-${index}`, params: { max_tokens: 16, messages: [{ role: 'user', content: `count to ${index}` }] },
  }));
  const submitted = await Promise.all(Object.entries(BATCHES).flatMap(([provider, count]) => Array.from({ length: count }, () =>
    env.client.submitBatch({ provider, model: `${provider}-metered`, requests, handler: 'take-a-moment', pollScheduleMs: [300] }))));
  const { jobId } = await env.client.startJob({ type: 'always-fails', input: {} });
  for (const { batchId } of submitted) assert.equal((await env.client.waitForBatch(batchId, { timeoutMs: 120_000 })).status, 'ended');
  await waitFor(async () => (await env.pool.query('SELECT 1 FROM dead_letters WHERE subject_id = $1', [jobId])).rowCount, 60_000, 'the job dead-lettered');
});

after(async () => {
  await prometheus?.stop();
  await Promise.all(workers.map((worker) => worker.stop()));
  await env?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** `{label="value",...} value` lines of a vector, sorted: comparable with deepEqual. */
async function vector(promql: string, labels: string[]): Promise<string[]> {
  return (await prometheus.query(promql)).map((row) => [...labels.map((label) => row.metric[label]), row.value].join(' ')).sort();
}

/** Prometheus scrapes every second and the gauges are read from PostgreSQL every 15 s: ask until it agrees. */
async function eventually(promql: string, labels: string[], expected: string[]): Promise<void> {
  let last: string[] = [];
  await waitFor(async () => {
    last = await vector(promql, labels);
    return JSON.stringify(last) === JSON.stringify(expected);
  }, 45_000, promql).catch(() => undefined);
  assert.deepEqual(last, expected, promql);
}

test('Prometheus scrapes both workers', { timeout: 60_000 }, async () => {
  await eventually(`up{job="${WORKERS_JOB}"}`, ['instance'], endpoints.map((endpoint) => `${endpoint} 1`).sort());
});

test('batches by provider and status, and open dead letters by step, are PostgreSQL\'s counts', { timeout: 90_000 }, async () => {
  const { rows: batches } = await env.pool.query('SELECT provider, status, count(*)::int AS n FROM batches GROUP BY 1, 2');
  assert.deepEqual(batches.map((row) => `${row.provider} ${row.status} ${row.n}`).sort(), ['anthropic ended 4', 'openai ended 6']);
  await eventually(`max by (provider, status) (${METRIC_NAMES.batches}) > 0`, ['provider', 'status'],
    batches.map((row) => `${row.provider} ${row.status} ${row.n}`).sort());
  const { rows: letters } = await env.pool.query('SELECT step, count(*)::int AS n FROM dead_letters WHERE resolution IS NULL GROUP BY step');
  await eventually(`max by (step) (${METRIC_NAMES.openDeadLetters}) > 0`, ['step'], letters.map((row) => `${row.step} ${row.n}`).sort());
});

test('results ingested by provider and status add up, across both workers, to the stored outcomes', { timeout: 60_000 }, async () => {
  const { rows } = await env.pool.query(
    'SELECT b.provider, r.status, count(*)::int AS n FROM request_results r JOIN batches b ON b.id = r.batch_id GROUP BY 1, 2',
  );
  assert.ok(rows.some((row) => row.status !== 'succeeded'), 'failed requests were stored too');
  await eventually(`sum by (provider, status) (${METRIC_NAMES.resultsIngested})`, ['provider', 'status'],
    rows.map((row) => `${row.provider} ${row.status} ${row.n}`).sort());
});

test('provider calls, handler runs and workflow completions are counted once each', { timeout: 60_000 }, async () => {
  await eventually(`sum by (provider) (${METRIC_NAMES.providerCalls}{operation="submit", outcome="ok"})`, ['provider'],
    Object.entries(BATCHES).map(([provider, count]) => `${provider} ${count}`).sort());
  await eventually(`sum(${METRIC_NAMES.handlerDuration}_count{handler="take-a-moment", outcome="ok"})`, [], ['10']);
  await eventually(`sum(temporal_workflow_completed{namespace="${namespace}", workflow_type="batchWorkflow"})`, [], ['10']);
  const lateness = await prometheus.query(`sum(${METRIC_NAMES.pollLateness}_count)`);
  assert.ok((lateness[0]?.value ?? 0) >= 10, 'every batch had at least one scheduled poll timed');

  const scrape = await (await fetch(`http://${endpoints[0]}/metrics`)).text();
  const sample = scrape.split('\n').filter((line) => line.startsWith('batchkeeper_') || /^temporal_(workflow_completed|activity_execution_latency_count|worker_task_slots_available)\b/.test(line));
  mkdirSync(path.join(ROOT, 'test-output'), { recursive: true });
  writeFileSync(path.join(ROOT, 'test-output', 'cluster-metrics-sample.txt'), `${sample.join('\n')}\n`);
  assert.ok(sample.some((line) => line.startsWith('temporal_')), 'the SDK\'s metrics are on the same endpoint');
});

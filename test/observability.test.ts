/**
 * What an operator sees of a running stock worker: its Prometheus endpoint (the SDK's metrics and batchkeeper's,
 * checked against PostgreSQL), its JSON log lines (batch or job id, step and attempt on the lines about one), and its
 * OpenTelemetry spans, received by a local OTLP/HTTP endpoint.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort } from '../tools/dev/dev-server';
import { METRIC_NAMES } from '../worker/metrics';
import { createTestEnvironment, type TestEnvironment } from './support/environment';
import { HANDLER_MS } from './support/observed-handlers';
import { scrape, total, type Sample } from './support/prometheus-text';
import { startStockWorker, stockWorkerEnv, type StockWorker } from './support/stock-worker';
import { waitFor } from './support/wait';

const MARKER = 'observability-body-marker-7f3a';

let env: TestEnvironment;
let worker: StockWorker;
let metricsUrl: string;
let otlp: { server: Server; url: string; spans: OtlpSpan[] };
const batchIds: Record<'openai' | 'anthropic', string> = { openai: '', anthropic: '' };
let jobId = '';

interface OtlpSpan {
  name: string;
  traceId: string;
  attributes: { key: string; value: Record<string, unknown> }[];
}

async function body(request: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of request) text += chunk;
  return text;
}

/** An OTLP/HTTP traces endpoint (JSON encoding, the exporter's default) that keeps every span it is sent. */
async function startOtlpReceiver(): Promise<typeof otlp> {
  const spans: OtlpSpan[] = [];
  const server = createServer(async (request, response) => {
    const text = await body(request);
    if (request.url === '/v1/traces') {
      const payload = JSON.parse(text) as { resourceSpans?: { scopeSpans?: { spans?: OtlpSpan[] }[] }[] };
      for (const resource of payload.resourceSpans ?? []) for (const scope of resource.scopeSpans ?? []) spans.push(...(scope.spans ?? []));
    }
    response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, spans, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces` };
}

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  otlp = await startOtlpReceiver();
  const metricsAddress = `127.0.0.1:${await freePort()}`;
  metricsUrl = `http://${metricsAddress}/metrics`;
  worker = await startStockWorker(stockWorkerEnv(env, {
    BATCHKEEPER_METRICS_ADDRESS: metricsAddress,
    BATCHKEEPER_OTLP_TRACES_URL: otlp.url,
    BATCHKEEPER_LOG_LEVEL: 'DEBUG',
    BATCHKEEPER_HANDLERS_MODULE: path.join(__dirname, 'support', 'observed-handlers.ts'),
    BATCHKEEPER_RETRY_DEFAULTS: JSON.stringify({ maximumAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 300 }),
  }));

  env.fake.setOutcomes({ [`${MARKER}-1`]: 'invalid', [`${MARKER}-2`]: 'missing' });
  // One status call answers HTTP 500 and the SDK is told not to retry it: the poll step fails once, then succeeds.
  env.fake.injectFault({ route: 'openai.batches.retrieve', kind: 'http_error', status: 500, shouldRetry: false, count: 1 });
  const requests = (count: number) => Array.from({ length: count }, (_, index) => ({
    customId: `${MARKER}-${index}`, params: { max_tokens: 16, messages: [{ role: 'user', content: `${MARKER} #${index}` }] },
  }));
  const submitted = await Promise.all([
    env.client.submitBatch({ provider: 'openai', model: 'gpt-observed', requests: requests(4), handler: 'take-a-moment', pollScheduleMs: [300] }),
    env.client.submitBatch({ provider: 'anthropic', model: 'claude-observed', requests: requests(3), handler: 'take-a-moment', pollScheduleMs: [300] }),
  ]);
  [batchIds.openai, batchIds.anthropic] = submitted.map((batch) => batch.batchId);
  ({ jobId } = await env.client.startJob({ type: 'always-fails', input: { note: MARKER } }));
  for (const batchId of Object.values(batchIds)) assert.equal((await env.client.waitForBatch(batchId, { timeoutMs: 90_000 })).status, 'ended');
  await waitFor(async () => (await env.pool.query('SELECT 1 FROM dead_letters WHERE subject_id = $1', [jobId])).rowCount, 60_000, 'the failing job dead-lettered');
});

after(async () => {
  await worker?.stop();
  otlp?.server.close();
  await env?.teardown();
});

/** Scrapes until the state gauges (read from PostgreSQL every 15 s) show what PostgreSQL holds now. */
async function scrapeWhenGaugesCurrent(): Promise<{ samples: Sample[]; batches: { provider: string; status: string; n: number }[] }> {
  const { rows: batches } = await env.pool.query('SELECT provider, status, count(*)::int AS n FROM batches GROUP BY 1, 2');
  const samples = await waitFor(async () => {
    const scraped = await scrape(metricsUrl);
    const current = batches.every((row) => total(scraped, METRIC_NAMES.batches, { provider: row.provider, status: row.status }) === row.n)
      && total(scraped, METRIC_NAMES.openDeadLetters, { step: 'execute' }) === 1;
    return current && scraped;
  }, 40_000, 'gauges that match PostgreSQL');
  return { samples, batches };
}

test('the Prometheus endpoint serves the SDK\'s metrics and batchkeeper\'s, and they agree with PostgreSQL', { timeout: 90_000 }, async () => {
  const { samples, batches } = await scrapeWhenGaugesCurrent();
  assert.ok(samples.some((sample) => sample.name.startsWith('temporal_activity_execution_latency')), 'the SDK\'s own metrics are served');
  assert.ok(total(samples, 'temporal_workflow_completed') >= 2, 'the SDK counted the completed batch workflows');

  // Batches by provider and status: every status has a gauge, zero included, and the non-zero ones are PostgreSQL's.
  assert.deepEqual(batches.map((row) => [row.provider, row.status, row.n]).sort(), [['anthropic', 'ended', 1], ['openai', 'ended', 1]]);
  assert.equal(total(samples, METRIC_NAMES.batches, { provider: 'openai', status: 'submitted' }), 0);
  assert.ok(samples.some((sample) => sample.name === METRIC_NAMES.batches && sample.labels.status === 'in_progress'), 'a status with no batch is reported as 0');
  const { rows: letters } = await env.pool.query('SELECT step, count(*)::int AS n FROM dead_letters WHERE resolution IS NULL GROUP BY step');
  assert.deepEqual(letters.map((row) => [row.step, row.n]), [['execute', 1]]);
  assert.equal(total(samples, METRIC_NAMES.openDeadLetters, { step: 'poll' }), 0);

  // Results ingested: one per stored outcome, by provider and status, as request_results holds them.
  const { rows: outcomes } = await env.pool.query(
    'SELECT b.provider, r.status, count(*)::int AS n FROM request_results r JOIN batches b ON b.id = r.batch_id GROUP BY 1, 2',
  );
  assert.ok(outcomes.length >= 3, `several outcome kinds were stored: ${JSON.stringify(outcomes)}`);
  for (const row of outcomes) {
    assert.equal(total(samples, METRIC_NAMES.resultsIngested, { provider: row.provider, status: row.status }), row.n, `${row.provider} ${row.status}`);
  }
  assert.equal(total(samples, METRIC_NAMES.resultsIngested), outcomes.reduce((sum, row) => sum + row.n, 0));

  // Provider calls by operation and outcome: the injected HTTP 500 once, the submit of each batch once.
  assert.equal(total(samples, METRIC_NAMES.providerCalls, { provider: 'openai', operation: 'getStatus', outcome: '500' }), 1);
  assert.ok(total(samples, METRIC_NAMES.providerCalls, { provider: 'openai', operation: 'getStatus', outcome: 'ok' }) >= 1);
  for (const provider of ['openai', 'anthropic']) {
    assert.equal(total(samples, METRIC_NAMES.providerCalls, { provider, operation: 'submit', outcome: 'ok' }), 1, `${provider} submit`);
  }

  // Poll lateness of each scheduled poll, and the handler's run time (it sleeps HANDLER_MS).
  assert.ok(total(samples, `${METRIC_NAMES.pollLateness}_count`, { provider: 'openai' }) >= 1, 'openai polls were timed');
  assert.equal(total(samples, `${METRIC_NAMES.handlerDuration}_count`, { handler: 'take-a-moment', outcome: 'ok' }), 2);
  assert.ok(total(samples, `${METRIC_NAMES.handlerDuration}_sum`, { handler: 'take-a-moment', outcome: 'ok' }) >= 2 * HANDLER_MS);
  assert.ok(!samples.some((sample) => Object.values(sample.labels).some((value) => value.includes(MARKER) || value === batchIds.openai)),
    'labels hold names and statuses, never ids or bodies');
});

test('log lines are one JSON object each, with the batch or job id, the step and the attempt, and no bodies', () => {
  const lines = worker.output().split('\n').filter(Boolean);
  mkdirSync(path.join(__dirname, '..', 'test-output'), { recursive: true });
  writeFileSync(path.join(__dirname, '..', 'test-output', 'observability-worker.log'), worker.output());
  const records = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`not a JSON line: ${line.slice(0, 300)}`);
    }
  });
  assert.ok(records.every((record) => typeof record.time === 'string' && typeof record.level === 'string' && typeof record.message === 'string'));
  // The one-entry schedule polls on activity retries: the poll that met the HTTP 500 is logged as a warning with its
  // error, and the regular poll step that takes over logs its own lines.
  const polls = records.filter((record) => record.batchId === batchIds.openai && record.step === 'poll');
  const failedPoll = polls.find((record) => record.level === 'WARN' && record.activityType === 'pollUntilChange');
  assert.ok(failedPoll, 'the failed poll is logged as a warning');
  assert.equal(failedPoll.attempt, 1, 'a poll on retries is a first try of the poll step');
  assert.equal(typeof failedPoll.pollOnRetries, 'number');
  assert.match(JSON.stringify(failedPoll.error), /500/, 'with the error class and message');
  assert.ok(polls.some((record) => record.activityType === 'pollBatch'), 'the regular poll step took over');
  const job = records.filter((record) => record.jobId === jobId && record.step === 'execute');
  assert.deepEqual([...new Set(job.map((record) => record.attempt))].sort(), [1, 2, 3], 'the job\'s three attempts');
  assert.ok(records.some((record) => record.batchId === batchIds.anthropic && record.workflowType === 'batchWorkflow'), 'workflow lines carry the batch id');
  assert.ok(records.some((record) => record.message === `worker polling task queue '${env.taskQueue}' on ${process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS}`));
  assert.ok(!lines.some((line) => line.includes(`${MARKER} #`) || line.includes('taskToken')), 'no request content, no task tokens');
});

test('traces reach the OTLP endpoint: workflow and activity spans of one trace, names and ids only', { timeout: 30_000 }, async () => {
  const spans = await waitFor(async () => {
    const names = new Set(otlp.spans.map((span) => span.name));
    return names.has('RunWorkflow:batchWorkflow') && names.has('RunActivity:pollBatch') && names.has('RunActivity:executeJob') && otlp.spans;
  }, 20_000, 'workflow and activity spans');
  const workflowTraces = new Set(spans.filter((span) => span.name === 'RunWorkflow:batchWorkflow').map((span) => span.traceId));
  assert.ok(spans.some((span) => span.name === 'RunActivity:submitBatch' && workflowTraces.has(span.traceId)), 'an activity span joins its workflow\'s trace');
  assert.ok(!JSON.stringify(spans).includes(MARKER), 'no span holds request content or job input');
});

/**
 * OpenAI webhooks (client/webhook-server.ts): the fake provider sends Standard-Webhooks-signed batch events as OpenAI
 * does, the endpoint verifies them with the openai SDK, maps the provider batch to ours and wakes its workflow, so a
 * batch on a 10-minute poll schedule is handled seconds after it ends. Forged, stale and replayed deliveries (a
 * replay after a restart of the endpoint too) are refused with a log line and no signal; an unknown batch is
 * answered 200 and logged. `batchkeeper webhooks serve` runs the same endpoint as a process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startWebhookServer, type WebhookLogRecord, type WebhookServer } from '../client/webhook-server';
import { batchStateQuery } from '../domain/definitions';
import type { BatchWorkflowState } from '../domain/types';
import { batchWorkflowId } from '../domain/workflow-ids';
import { newWebhookSecret, signedWebhook } from '../testing/fake-provider/webhooks';
import { startFakeProvider } from '../testing/fake-provider/server';
import { chatRequests, createTestEnvironment, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';
import { waitFor } from './support/wait';

/** Ten minutes between polls: without the webhook nothing would look at the batch for that long. */
const LONG_SCHEDULE_MS = [600_000];

let env: TestEnvironment;
let secret: string;
let server: WebhookServer;
const lines: WebhookLogRecord[] = [];

async function startServer(): Promise<WebhookServer> {
  return startWebhookServer({ pool: env.pool, temporal: env.temporal, secret, log: (record) => lines.push(record) });
}

before(async () => {
  env = await createTestEnvironment({ handlers, fakeProcessingMs: 1500 });
  await createRecordingTables(env.pool);
  secret = newWebhookSecret();
  server = await startServer();
  env.fake.configureWebhooks({ url: server.webhookUrl, secret });
});
after(async () => {
  await server?.close();
  await env?.teardown();
});

async function signalCount(batchId: string): Promise<number> {
  const history = await env.temporal.workflow.getHandle(batchWorkflowId(batchId)).fetchHistory();
  return (history.events ?? []).filter((event) => event.workflowExecutionSignaledEventAttributes).length;
}

async function post(delivery: { headers: Record<string, string>; body: string }, url = server.webhookUrl) {
  const response = await fetch(url, { method: 'POST', headers: delivery.headers, body: delivery.body });
  return { status: response.status, body: (await response.json()) as { outcome: string } };
}

/** A one-entry schedule polls on activity retries from the start: the first of them is the next poll. */
function firstPollAt(state: BatchWorkflowState): string | undefined {
  return state.nextPollAt ?? state.pollingByRetries?.since;
}

/** Submits an OpenAI batch on the long schedule and waits until it is in progress with its provider batch id. */
async function runningBatch(prefix: string, processingMs?: number): Promise<{ batchId: string; providerBatchId: string }> {
  if (processingMs !== undefined) env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, processingMs, times: 1 }] });
  const { batchId } = await env.client.submitBatch({
    provider: 'openai', model: 'model-x', requests: chatRequests(3, prefix), handler: 'record', pollScheduleMs: LONG_SCHEDULE_MS,
  });
  const state = await waitFor(async () => {
    const current = await env.temporal.workflow.getHandle(batchWorkflowId(batchId)).query(batchStateQuery);
    return current.phase === 'polling' && current.providerBatchId && firstPollAt(current) ? current : undefined;
  }, 30_000, 'batch submitted and waiting for its first poll');
  return { batchId, providerBatchId: state.providerBatchId! };
}

describe('a webhook wakes the batch', () => {
  test('a batch on a 10-minute poll schedule is handled within seconds of its end, through the signed webhook', async () => {
    const before = Date.now();
    const { batchId, providerBatchId } = await runningBatch('wh-ok');
    const state = await env.temporal.workflow.getHandle(batchWorkflowId(batchId)).query(batchStateQuery);
    assert.ok(Date.parse(firstPollAt(state)!) - before > 9 * 60_000, `the first poll is planned 10 minutes out (${firstPollAt(state)})`);

    const batch = await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
    assert.equal(batch.status, 'ended');
    assert.equal(batch.pollCount, 1, 'one poll: the one the webhook asked for');
    const { rows: calls } = await env.pool.query('SELECT succeeded FROM public.handler_calls WHERE batch_id = $1', [batchId]);
    assert.deepEqual(calls, [{ succeeded: 3 }], 'the handler ran once with every result');

    const deliveries = env.fake.webhookDeliveries().filter((delivery) => delivery.providerBatchId === providerBatchId);
    assert.deepEqual(deliveries.map((delivery) => [delivery.type, delivery.status]), [['batch.completed', 200]]);
    assert.equal(await signalCount(batchId), 1);
    const line = lines.find((entry) => entry.batchId === batchId);
    assert.equal(line?.outcome, 'signaled');
    assert.equal(line?.webhookId, deliveries[0]!.webhookId);
    const { rows } = await env.pool.query('SELECT outcome, batch_id, event_type FROM webhook_deliveries WHERE webhook_id = $1', [deliveries[0]!.webhookId]);
    assert.deepEqual(rows, [{ outcome: 'signaled', batch_id: batchId, event_type: 'batch.completed' }]);

    // Once the workflow has ended, a (new) event about its batch has nothing to wake: 200, logged, no effect.
    await env.temporal.workflow.getHandle(batchWorkflowId(batchId)).result();
    const late = signedWebhook(secret, { type: 'batch.completed', data: { id: providerBatchId } });
    assert.deepEqual(await post(late), { status: 200, body: { outcome: 'notRunning' } });
    assert.match(String(lines.find((entry) => entry.webhookId === late.webhookId)?.message), /not running \(status ended\)/);
  });
});

describe('deliveries that must have no effect', () => {
  let batchId: string;
  let providerBatchId: string;
  before(async () => {
    ({ batchId, providerBatchId } = await runningBatch('wh-refused', 10 * 60_000));
  });

  const lineOf = (webhookId: string, outcome: string) => lines.find((entry) => entry.webhookId === webhookId && entry.outcome === outcome);

  test('forged: signed with another secret, or a tampered body, is refused 401 without a signal', async () => {
    const forged = signedWebhook(newWebhookSecret(), { type: 'batch.completed', data: { id: providerBatchId } });
    assert.deepEqual(await post(forged), { status: 401, body: { outcome: 'forged' } });
    assert.match(String(lineOf(forged.webhookId, 'forged')?.message), /refused: The given webhook signature does not match/);

    const genuine = signedWebhook(secret, { type: 'batch.completed', data: { id: 'batch_someone_else' } });
    const tampered = { headers: genuine.headers, body: genuine.body.replace('batch_someone_else', providerBatchId) };
    assert.equal((await post(tampered)).status, 401);
    assert.equal(await signalCount(batchId), 0);
  });

  test('stale: a correctly signed delivery from 10 minutes ago (or from the future) is refused 400 without a signal', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = signedWebhook(secret, { type: 'batch.completed', data: { id: providerBatchId } }, { timestampSeconds: now - 600 });
    assert.deepEqual(await post(old), { status: 400, body: { outcome: 'stale' } });
    assert.match(String(lineOf(old.webhookId, 'stale')?.message), /stale: Webhook timestamp is too old \(tolerance 300 s\)/);
    const future = signedWebhook(secret, { type: 'batch.completed', data: { id: providerBatchId } }, { timestampSeconds: now + 600 });
    assert.equal((await post(future)).status, 400);
    assert.equal(await signalCount(batchId), 0);
  });

  test('missing headers are refused 400', async () => {
    const genuine = signedWebhook(secret, { type: 'batch.completed', data: { id: providerBatchId } });
    const { 'webhook-signature': _dropped, ...headers } = genuine.headers;
    assert.deepEqual(await post({ headers, body: genuine.body }), { status: 400, body: { outcome: 'malformed' } });
    assert.equal(await signalCount(batchId), 0);
  });

  test('replayed: the same delivery again is refused 409, also after the endpoint restarts', async () => {
    const genuine = signedWebhook(secret, { type: 'batch.completed', data: { id: providerBatchId } });
    assert.deepEqual(await post(genuine), { status: 200, body: { outcome: 'signaled' } });
    await waitFor(async () => (await signalCount(batchId)) === 1, 10_000, 'the one signal recorded');
    assert.deepEqual(await post(genuine), { status: 409, body: { outcome: 'replayed' } });
    assert.ok(lineOf(genuine.webhookId, 'replayed'), 'a log line says it was replayed');

    await server.close();
    server = await startServer();
    env.fake.configureWebhooks({ url: server.webhookUrl, secret });
    assert.deepEqual(await post(genuine, server.webhookUrl), { status: 409, body: { outcome: 'replayed' } });
    // Re-signed with a fresh timestamp under the same webhook-id: still the same delivery.
    const resigned = signedWebhook(secret, { type: 'batch.completed', data: { id: providerBatchId } }, { webhookId: genuine.webhookId });
    assert.equal((await post(resigned, server.webhookUrl)).status, 409);
    assert.equal(await signalCount(batchId), 1, 'only the first delivery signalled');
  });

  test('an unknown provider batch is answered 200 and logged, with nothing signalled', async () => {
    const unknown = signedWebhook(secret, { type: 'batch.completed', data: { id: 'batch_not_ours_0001' } });
    assert.deepEqual(await post(unknown), { status: 200, body: { outcome: 'unknownBatch' } });
    const line = lineOf(unknown.webhookId, 'unknownBatch');
    assert.equal(line?.providerBatchId, 'batch_not_ours_0001');
    assert.match(String(line?.message), /does not know/);
    const other = signedWebhook(secret, { type: 'response.completed', data: { id: 'resp_1' } });
    assert.deepEqual(await post(other), { status: 200, body: { outcome: 'ignored' } });
  });

  test('log lines carry ids and outcomes, never the secret or the body', async () => {
    const text = lines.map((line) => JSON.stringify(line)).join('\n');
    assert.ok(lines.length >= 8);
    assert.doesNotMatch(text, new RegExp(secret.slice(6, 30).replace(/[+/]/g, '.')));
    assert.doesNotMatch(text, /"created_at"|"object":"event"|evt_/);
    for (const line of lines) assert.equal(typeof line.time, 'string');
  });
});

describe('the fake provider sends what OpenAI sends', () => {
  test('failed, cancelled and expired OpenAI batches each send their event, which the SDK verifies', async () => {
    const received: { type: string; id: string }[] = [];
    const sdk = new OpenAI({ apiKey: 'unused', webhookSecret: secret });
    const receiver: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        sdk.webhooks.unwrap(Buffer.concat(chunks).toString('utf8'), req.headers as Record<string, string>, secret)
          .then((event) => {
            received.push({ type: event.type, id: (event.data as { id: string }).id });
            res.writeHead(200).end();
          })
          .catch(() => res.writeHead(401).end());
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const fake = await startFakeProvider({ processingMs: 60_000 });
    try {
      fake.configureWebhooks({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, secret });
      fake.configure({ batchRules: [{ match: { customId: 'fails-0' }, outcome: 'failed', processingMs: 100 }] });
      const openai = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseUrl, maxRetries: 0 });
      const create = async (customId: string) => {
        const line = JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model: 'model-x', messages: [{ role: 'user', content: 'hi' }] } });
        const file = await openai.files.create({ file: new File([line], 'in.jsonl'), purpose: 'batch' });
        return openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      };
      const failed = await create('fails-0');
      const cancelled = await create('cancels-0');
      const expired = await create('expires-0');
      await openai.batches.cancel(cancelled.id);
      fake.expireNow(expired.id);
      await waitFor(async () => received.length >= 3, 10_000, 'three webhooks');
      assert.deepEqual(new Set(received.map((event) => `${event.type} ${event.id}`)), new Set([
        `batch.failed ${failed.id}`, `batch.cancelled ${cancelled.id}`, `batch.expired ${expired.id}`,
      ]));
      assert.ok(fake.webhookDeliveries().every((delivery) => delivery.status === 200 && delivery.attempt === 1));
    } finally {
      await fake.close();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  test('a delivery answered with an error is retried under the same webhook-id', async () => {
    let calls = 0;
    const ids: string[] = [];
    const receiver: Server = createServer((req, res) => {
      calls += 1;
      ids.push(String(req.headers['webhook-id']));
      req.resume();
      res.writeHead(calls === 1 ? 503 : 200).end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const fake = await startFakeProvider({ processingMs: 100 });
    try {
      fake.configureWebhooks({ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`, secret, retryDelayMs: 50 });
      const openai = new OpenAI({ apiKey: 'sk-test', baseURL: fake.openaiBaseUrl, maxRetries: 0 });
      const line = JSON.stringify({ custom_id: 'r-0', method: 'POST', url: '/v1/chat/completions', body: { model: 'model-x', messages: [] } });
      const file = await openai.files.create({ file: new File([line], 'in.jsonl'), purpose: 'batch' });
      await openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      await waitFor(async () => calls >= 2, 10_000, 'a second attempt');
      assert.equal(ids[0], ids[1]);
      assert.deepEqual(fake.webhookDeliveries().map((delivery) => [delivery.attempt, delivery.status]), [[1, 503], [2, 200]]);
    } finally {
      await fake.close();
      await new Promise((resolve) => receiver.close(resolve));
    }
  });
});

describe('batchkeeper webhooks serve', () => {
  const BIN = path.join(__dirname, '..', 'bin', 'batchkeeper.ts');
  const cliEnv = () => ({
    PATH: process.env.PATH, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
    BATCHKEEPER_TASK_QUEUE: env.taskQueue, BATCHKEEPER_OPENAI_WEBHOOK_SECRET: secret, BATCHKEEPER_WEBHOOK_PORT: '0',
  });

  test('serves the endpoint until SIGTERM, then prints what it handled', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'webhooks', 'serve', '--json'], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const url = await waitFor(async () => /listening at (http:\/\/\S+?)"/.exec(stderr)?.[1], 30_000, 'the endpoint listening');
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/webhooks\/openai$/, 'bound to loopback by default');
      const forged = signedWebhook(newWebhookSecret(), { type: 'batch.completed', data: { id: 'batch_x' } });
      assert.equal((await post(forged, url)).status, 401);
      const unknown = signedWebhook(secret, { type: 'batch.expired', data: { id: 'batch_not_ours_0002' } });
      assert.equal((await post(unknown, url)).status, 200);
      await waitFor(async () => stderr.includes('batch_not_ours_0002'), 5_000, 'the log line');
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    const output = JSON.parse(stdout) as { stoppedBy: string; counts: Record<string, number> };
    assert.equal(output.stoppedBy, 'SIGTERM');
    assert.equal(output.counts.forged, 1);
    assert.equal(output.counts.unknownBatch, 1);
    assert.ok(!stderr.includes(secret), 'the secret is never printed');
  });

  test('without the secret it refuses to start, naming the variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', BIN, 'webhooks', 'serve'], {
      env: { ...cliEnv(), BATCHKEEPER_OPENAI_WEBHOOK_SECRET: '' }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 2);
    assert.match(stderr, /BATCHKEEPER_OPENAI_WEBHOOK_SECRET is not set/);
  });
});

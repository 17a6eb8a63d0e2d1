/**
 * Optional payload encryption: a worker and a client with the AES-GCM codec (codec/) on the shared test server run a
 * batch and a job that fails and is discarded with a note. Their histories hold only `binary/encrypted` payloads
 * (arguments, results, update requests, user metadata, and the failure messages as encoded attributes) and none of
 * the plaintext; the codec server that Temporal Web calls decodes them back; a payload written under an old key
 * still decrypts after rotation; Temporal Web is pointed at the codec server with `--ui-codec-endpoint`.
 */
import assert from 'node:assert/strict';
import { runCli } from './support/run-cli';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { Worker } from '@temporalio/worker';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../activities/handlers';
import { BatchkeeperAdmin } from '../client/admin';
import { BatchkeeperClient } from '../client/batchkeeper-client';
import {
  AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, encryptingDataConverter, keyring, newCodecKeyEntry,
  parseCodecKeys, startCodecServer, type CodecServer,
} from '../codec';
import { CodecConfigError } from '../codec/keys';
import { loadConfig } from '../config/load';
import { startDevServer } from '../tools/dev/dev-server';
import { createProviders } from '../providers/registry';
import { createBatchkeeperWorker } from '../worker/create-worker';
import { FAST_SCHEDULE_MS, TEST_API_KEY, createTestEnvironment, sharedWorkflowBundle, type TestEnvironment } from './support/environment';
import { waitFor } from './support/wait';

const tag = randomUUID().slice(0, 8);
const CONTENT_MARKER = `codec-request-content-${tag}`;
const METADATA_MARKER = `codec-metadata-${tag}`;
const FAILURE_MARKER = `codec-failure-message-${tag}`;
const NOTE_MARKER = `codec-operator-note-${tag}`;
const JOB_INPUT_MARKER = `codec-job-input-${tag}`;
const MARKERS = [CONTENT_MARKER, METADATA_MARKER, FAILURE_MARKER, NOTE_MARKER, JOB_INPUT_MARKER];

const NEW_KEY = newCodecKeyEntry('k-new');
const OLD_KEY = newCodecKeyEntry('k-old');
const KEYS_ENV = `${NEW_KEY},${OLD_KEY}`;

const handlers: BatchHandlerRegistry = { quiet: { async onComplete() {} } };
const jobExecutors: JobExecutorRegistry = {
  explode: {
    async execute() {
      throw ApplicationFailure.nonRetryable(`cannot process the input: ${FAILURE_MARKER}`, 'InputRejected');
    },
  },
  echo: { execute: async (input) => ({ echoed: input }) },
};

let env: TestEnvironment;
let worker: Worker;
let running: Promise<void>;
let encrypted: Client;
let bk: BatchkeeperClient;
let codecServer: CodecServer;

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  // The app's client and the worker both take the converter built from the environment.
  const dataConverter = encryptingDataConverter(loadConfig({ BATCHKEEPER_CODEC_KEYS: KEYS_ENV }, ['codec']).codec.keys!);
  assert.ok(dataConverter, 'BATCHKEEPER_CODEC_KEYS turns encryption on');
  encrypted = new Client({ connection: env.connection, dataConverter });
  bk = new BatchkeeperClient({ client: encrypted, pool: env.pool, taskQueue: env.taskQueue });
  worker = await createBatchkeeperWorker({
    connection: env.nativeConnection,
    taskQueue: env.taskQueue,
    pool: env.pool,
    providers: createProviders({
      openai: { apiKey: TEST_API_KEY, baseURL: env.fake.openaiBaseUrl, maxRetries: 0 },
      anthropic: { apiKey: TEST_API_KEY, baseURL: env.fake.anthropicBaseUrl, maxRetries: 0 },
    }),
    handlers,
    jobExecutors,
    retry: { defaults: { maximumAttempts: 2, initialIntervalMs: 100, maximumIntervalMs: 200 } },
    workflowBundle: await sharedWorkflowBundle(),
    dataConverter,
  });
  running = worker.run();
  codecServer = await startCodecServer({ codec: new AesGcmPayloadCodec(parseCodecKeys(KEYS_ENV)) });
});

after(async () => {
  worker?.shutdown();
  await running?.catch(() => undefined);
  await codecServer?.close();
  await env?.teardown();
});

// ---- helpers ----

type JsonPayload = { metadata?: Record<string, string>; data?: string };

/** Every payload in a JSON history (objects with a metadata.encoding), with the path where it was found. */
function payloadsIn(value: unknown, at = '$', found: { at: string; payload: JsonPayload }[] = []) {
  if (Array.isArray(value)) value.forEach((item, index) => payloadsIn(item, `${at}[${index}]`, found));
  else if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const metadata = record.metadata as Record<string, unknown> | undefined;
    if (metadata && typeof metadata === 'object' && typeof metadata.encoding === 'string') {
      found.push({ at, payload: record as JsonPayload });
    } else {
      for (const [key, child] of Object.entries(record)) payloadsIn(child, `${at}.${key}`, found);
    }
  }
  return found;
}

const b64 = (text: string | undefined) => Buffer.from(text ?? '', 'base64').toString('utf8');

async function historyJson(workflowId: string): Promise<{ text: string; parsed: unknown }> {
  // A client without the codec: what the server stores, as an operator without the keys would export it.
  const history = await env.temporal.workflow.getHandle(workflowId).fetchHistory();
  const text = historyToJSON(history);
  return { text, parsed: JSON.parse(text) };
}

function assertNoPlaintext(text: string, what: string): void {
  for (const marker of MARKERS) {
    assert.ok(!text.includes(marker), `${what} must not contain ${marker}`);
    assert.ok(!text.includes(Buffer.from(marker).toString('base64').slice(0, 16)), `${what} must not contain ${marker} in base64`);
  }
}

async function decodeViaServer(server: CodecServer, payloads: JsonPayload[], headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-namespace': 'default', origin: 'http://localhost:8233', ...headers },
    body: JSON.stringify({ payloads }),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as { payloads?: JsonPayload[]; error?: string } };
}

// ---- tests ----

let batchWorkflowId: string;
let jobWorkflowId: string;

test('a batch and a failing, discarded job run on the encrypting worker and client', { timeout: 90_000 }, async () => {
  const { batchId, workflowId } = await bk.submitBatch({
    provider: 'openai', model: 'model-x', handler: 'quiet', metadata: { note: METADATA_MARKER }, pollScheduleMs: FAST_SCHEDULE_MS,
    requests: [0, 1].map((index) => ({ customId: `codec-${index}`, params: { messages: [{ role: 'user', content: `${CONTENT_MARKER} ${index}` }] } })),
  });
  batchWorkflowId = workflowId;
  const batch = await bk.waitForBatch(batchId, { timeoutMs: 60_000 });
  assert.equal(batch.status, 'ended');
  const state = await bk.getBatch(batchId);
  assert.ok(state.steps.every((step) => step.succeededAt), 'every step succeeded through the encrypted converter');

  const { jobId, workflowId: jobWorkflow } = await bk.startJob({ type: 'explode', input: { marker: JOB_INPUT_MARKER } });
  jobWorkflowId = jobWorkflow;
  const letter = await waitFor(async () => (await bk.getJob(jobId)).deadLetter, 30_000, 'job dead letter');
  // The workflow decoded the encrypted failure: the dead letter carries the real message.
  assert.match(letter.errorMessage, new RegExp(FAILURE_MARKER));
  assert.equal(letter.errorClass, 'InputRejected');
  const admin = new BatchkeeperAdmin(encrypted, env.pool);
  await admin.discardDeadLetter(letter.id, { note: NOTE_MARKER, resolvedBy: 'codec-test' });
  const job = await bk.waitForJob(jobId, { timeoutMs: 30_000 });
  assert.equal(job.status, 'discarded');
});

test('the histories hold only binary/encrypted payloads and no plaintext', async () => {
  assert.ok(batchWorkflowId && jobWorkflowId, 'the workflows ran');
  for (const workflowId of [batchWorkflowId, jobWorkflowId]) {
    const { text, parsed } = await historyJson(workflowId);
    const all = payloadsIn(parsed);
    // Search attributes are indexed by the server, so no codec touches them: they hold kind, status, provider,
    // handler, step names and counts only (test/secrets.test.ts checks they carry no data).
    // The same holds for the SDK's own patch markers (patched() ids: names in the workflow code).
    const unencoded = ({ at }: { at: string }) => at.includes('.searchAttributes.') || at.includes('markerRecordedEventAttributes.details.patch-data');
    const searchAttributes = all.filter(unencoded);
    const payloads = all.filter((entry) => !unencoded(entry));
    assert.ok(searchAttributes.length >= 1 && payloads.length >= 8, `${workflowId}: ${payloads.length} payloads found`);
    for (const { at, payload } of searchAttributes) assertNoPlaintext(b64(payload.data), `${workflowId} ${at}`);
    for (const { at, payload } of payloads) {
      assert.equal(b64(payload.metadata!.encoding), ENCRYPTED_ENCODING, `${workflowId} ${at} is encrypted`);
      assert.equal(b64(payload.metadata![KEY_ID_METADATA]), 'k-new', `${workflowId} ${at} names the active key`);
      assertNoPlaintext(b64(payload.data), `${workflowId} ${at}`);
    }
    assertNoPlaintext(text, `history of ${workflowId}`);
  }
  // Failures: message and stack travel as an encoded (encrypted) attribute; the visible message is a placeholder.
  const { parsed } = await historyJson(jobWorkflowId);
  const failures: { message?: string; encodedAttributes?: JsonPayload }[] = [];
  (function collect(value: unknown) {
    if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if ('encodedAttributes' in record) failures.push(record as (typeof failures)[number]);
      Object.values(record).forEach(collect);
    }
  })(parsed);
  assert.ok(failures.length >= 1, 'the failed activity is in the history');
  for (const failure of failures) {
    assert.equal(failure.message, 'Encoded failure');
    assert.equal(b64(failure.encodedAttributes!.metadata!.encoding), ENCRYPTED_ENCODING);
  }
});

test('the codec server decodes the history for an operator: request args, update note, failure message', async () => {
  const batchPayloads = payloadsIn((await historyJson(batchWorkflowId)).parsed).map(({ payload }) => payload);
  const decodedBatch = await decodeViaServer(codecServer, batchPayloads);
  assert.equal(decodedBatch.status, 200, JSON.stringify(decodedBatch.body));
  assert.equal(decodedBatch.headers.get('access-control-allow-origin'), 'http://localhost:8233', 'CORS for Temporal Web');
  const batchTexts = decodedBatch.body.payloads!.map((payload) => b64(payload.data));
  assert.ok(decodedBatch.body.payloads!.every((payload) => b64(payload.metadata!.encoding) !== ENCRYPTED_ENCODING), 'all decrypted');
  assert.ok(batchTexts.some((text) => text.includes(`"batchId":"${batchWorkflowId.replace(/^batch-/, '')}"`)), 'workflow input readable');
  assert.ok(batchTexts.some((text) => text.includes('model-x')), 'static summary readable');

  const jobPayloads = payloadsIn((await historyJson(jobWorkflowId)).parsed).map(({ payload }) => payload);
  const decodedJob = await decodeViaServer(codecServer, jobPayloads);
  assert.equal(decodedJob.status, 200);
  const jobTexts = decodedJob.body.payloads!.map((payload) => b64(payload.data)).join('\n');
  assert.ok(jobTexts.includes(NOTE_MARKER), 'the discard note (an update argument) decodes');
  assert.ok(jobTexts.includes(FAILURE_MARKER), 'the failure message (encoded attributes) decodes');
  assert.ok(!jobTexts.includes(JOB_INPUT_MARKER), 'job input never went to Temporal at all, encrypted or not');
});

test('key rotation: payloads written under the old key still decrypt on the worker and in the codec server', { timeout: 60_000 }, async () => {
  // A client still configured with only the old key (a deployment mid-rotation) starts a job.
  const oldClient = new Client({ connection: env.connection, dataConverter: encryptingDataConverter(parseCodecKeys(OLD_KEY)) });
  const oldBk = new BatchkeeperClient({ client: oldClient, pool: env.pool, taskQueue: env.taskQueue });
  const { jobId, workflowId } = await oldBk.startJob({ type: 'echo', input: { n: 1 } });
  const job = await bk.waitForJob(jobId, { timeoutMs: 30_000 });
  assert.equal(job.status, 'succeeded', 'the worker (new + old keys) read the old-key workflow input');

  const payloads = payloadsIn((await historyJson(workflowId)).parsed);
  const byKey = (id: string) => payloads.filter(({ payload }) => b64(payload.metadata![KEY_ID_METADATA]) === id);
  const input = byKey('k-old').find(({ at }) => at.includes('workflowExecutionStartedEventAttributes.input'));
  assert.ok(input, 'the start arguments were encrypted with the old key');
  assert.ok(byKey('k-new').length >= 1, 'what the worker wrote uses the active key');

  const oldPayload = input.payload;
  const decoded = await decodeViaServer(codecServer, [oldPayload]);
  assert.equal(decoded.status, 200);
  assert.match(b64(decoded.body.payloads![0]!.data), new RegExp(jobId));

  // A codec server that no longer has the old key names the missing key, and nothing of the key material.
  const withoutOld = await startCodecServer({ codec: new AesGcmPayloadCodec(parseCodecKeys(NEW_KEY)) });
  try {
    const refused = await decodeViaServer(withoutOld, [oldPayload]);
    assert.equal(refused.status, 400);
    assert.match(refused.body.error!, /k-old/);
    assert.ok(!refused.body.error!.includes(OLD_KEY.split(':')[1]!) && !refused.body.error!.includes(NEW_KEY.split(':')[1]!));
  } finally {
    await withoutOld.close();
  }
});

test('the CLI with the same BATCHKEEPER_CODEC_KEYS starts a job the encrypting worker runs; bad keys are a config error', { timeout: 60_000 }, async () => {
  const cli = (args: string[], keys: string) => runCli(args, {
    PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: env.databaseUrl,
    TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS, BATCHKEEPER_TASK_QUEUE: env.taskQueue, BATCHKEEPER_CODEC_KEYS: keys,
  });
  const started = await cli(['jobs', 'start', 'echo', '--input', '{"via":"cli"}', '--json'], KEYS_ENV);
  assert.equal(started.code, 0, started.stderr);
  const { jobId, workflowId } = JSON.parse(started.stdout) as { jobId: string; workflowId: string };
  assert.equal((await bk.waitForJob(jobId, { timeoutMs: 30_000 })).status, 'succeeded');
  const input = payloadsIn((await historyJson(workflowId)).parsed).find(({ at }) => at.includes('workflowExecutionStartedEventAttributes.input'));
  assert.equal(b64(input?.payload.metadata!.encoding), ENCRYPTED_ENCODING, 'the CLI encrypted the start arguments');

  const refused = await cli(['jobs', 'start', 'echo', '--json'], 'k-new:not-base64!');
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /BATCHKEEPER_CODEC_KEYS codec key k-new is not base64/);
});

describe('the codec server over HTTP', () => {
  const plain = defaultPayloadConverter.toPayload({ secret: 'value' })!;
  const toJson = (payload: Payload): JsonPayload => ({
    metadata: Object.fromEntries(Object.entries(payload.metadata ?? {}).map(([key, value]) => [key, Buffer.from(value).toString('base64')])),
    data: Buffer.from(payload.data ?? new Uint8Array()).toString('base64'),
  });

  test('CORS preflight from Temporal Web allows POST with x-namespace and content-type; other origins get no CORS', async () => {
    const preflight = await fetch(`${codecServer.url}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:8233', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-namespace,content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'http://localhost:8233');
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /x-namespace/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /content-type/);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
    const foreign = await fetch(`${codecServer.url}/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  });

  test('/encode then /decode round-trips; bad input gets a clear 4xx', async () => {
    const encoded = await fetch(`${codecServer.url}/encode`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ payloads: [toJson(plain)] }),
    });
    assert.equal(encoded.status, 200);
    const { payloads } = (await encoded.json()) as { payloads: JsonPayload[] };
    assert.equal(b64(payloads[0]!.metadata!.encoding), ENCRYPTED_ENCODING);
    const decoded = await decodeViaServer(codecServer, payloads);
    assert.deepEqual(JSON.parse(b64(decoded.body.payloads![0]!.data)), { secret: 'value' });

    const tampered = { ...payloads[0]!, data: Buffer.from(Buffer.from(payloads[0]!.data!, 'base64').map((byte, i) => (i === 20 ? byte ^ 1 : byte))).toString('base64') };
    const refused = await decodeViaServer(codecServer, [tampered]);
    assert.equal(refused.status, 400);
    assert.match(refused.body.error!, /failed authentication with key k-new/);

    const notJson = await fetch(`${codecServer.url}/decode`, { method: 'POST', body: '{"payloads": [' });
    assert.equal(notJson.status, 400);
    assert.match(((await notJson.json()) as { error: string }).error, /not JSON/);
    const wrongShape = await decodeViaServer(codecServer, 'nope' as unknown as JsonPayload[]);
    assert.equal(wrongShape.status, 400);
    assert.match(wrongShape.body.error!, /payloads/);
    const unknownRoute = await fetch(`${codecServer.url}/dump`, { method: 'POST', body: '{}' });
    assert.equal(unknownRoute.status, 404);
  });

  test('only authorised callers: a bearer token and a namespace list are enforced when configured', async () => {
    const guarded = await startCodecServer({
      codec: new AesGcmPayloadCodec(parseCodecKeys(KEYS_ENV)), authToken: 'operator-token', namespaces: ['default'],
    });
    try {
      const payloads = [toJson(plain)];
      assert.equal((await decodeViaServer(guarded, payloads)).status, 401);
      assert.equal((await decodeViaServer(guarded, payloads, { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await decodeViaServer(guarded, payloads, { authorization: 'Bearer operator-token', 'x-namespace': 'other' })).status, 403);
      assert.equal((await decodeViaServer(guarded, payloads, { authorization: 'Bearer operator-token' })).status, 200);
    } finally {
      await guarded.close();
    }
  });

  test('keys are checked at start: bad entries are named, key material never echoed', () => {
    assert.throws(() => parseCodecKeys('only-an-id'), (error: Error) => error instanceof CodecConfigError && /entry 1/.test(error.message));
    assert.throws(() => parseCodecKeys('short:c2hvcnQ='), /short must be 32 bytes/);
    assert.throws(() => parseCodecKeys(`${NEW_KEY},${NEW_KEY}`), /listed twice/);
    assert.throws(() => keyring([]), /at least one/);
    const secret = NEW_KEY.split(':')[1]!;
    try {
      parseCodecKeys(`bad id:${secret}`);
      assert.fail('should throw');
    } catch (error) {
      assert.ok(!(error as Error).message.includes(secret));
    }
    assert.equal(loadConfig({}, ['codec']).codec.keys, undefined, 'encryption is off unless keys are configured');
  });
});

test('Temporal Web is pointed at the codec server with --ui-codec-endpoint and its origin passes CORS', { timeout: 60_000 }, async () => {
  const binaryPath = process.env.TEMPORAL_CLI_PATH;
  assert.ok(binaryPath, 'TEMPORAL_CLI_PATH is set by npm test');
  const server = await startDevServer({ binaryPath, uiPort: undefined, codecEndpoint: codecServer.url, startTimeoutMs: 30_000 });
  try {
    const settings = await waitFor(async () => {
      const response = await fetch(`${server.uiUrl}/api/v1/settings`);
      return response.ok ? ((await response.json()) as { Codec?: { Endpoint?: string } }) : undefined;
    }, 20_000, 'Temporal Web settings');
    assert.equal(settings.Codec?.Endpoint, codecServer.url, 'the UI decodes through our codec server');
    // The UI calls the codec server from the browser, from its own origin.
    const uiOrigin = new URL(server.uiUrl!).origin;
    const forUi = await startCodecServer({ codec: new AesGcmPayloadCodec(parseCodecKeys(KEYS_ENV)), allowedOrigins: [uiOrigin] });
    try {
      const preflight = await fetch(`${forUi.url}/decode`, {
        method: 'OPTIONS',
        headers: { origin: uiOrigin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' },
      });
      assert.equal(preflight.headers.get('access-control-allow-origin'), uiOrigin);
    } finally {
      await forUi.close();
    }
  } finally {
    await server.stop();
  }
});

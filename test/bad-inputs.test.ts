/**
 * The bad-input corpus (test/fixtures/bad-inputs.json) against the client API, the CLI and provider responses. Every
 * case must end in a clear, typed error naming the field or cause; a rejected submission writes nothing (every table
 * keeps its row count, no workflow starts, no provider batch is created); a bad provider response fails only what it
 * touches (its own requests or its own batch) and never leaves half-written results.
 *
 * Provider responses go through a pass-through proxy in front of the fake provider that can append result lines for
 * custom ids that were never submitted.
 */
import assert from 'node:assert/strict';
import { runCli, type CliRun } from './support/run-cli';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Worker } from '@temporalio/worker';
import { BatchkeeperAdmin } from '../client/admin';
import { BatchkeeperClient } from '../client/batchkeeper-client';
import { BatchkeeperError } from '../client/errors';
import { createProviders } from '../providers/registry';
import { createBatchkeeperWorker } from '../worker/create-worker';
import type { FaultSpec } from '../testing/fake-provider/faults';
import type { OutcomeSpec } from '../testing/fake-provider/config';
import {
  FAST_SCHEDULE_MS, TEST_API_KEY, chatRequests, createTestEnvironment, sharedWorkflowBundle, type TestEnvironment,
} from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';
import { waitFor } from './support/wait';

// ---- The corpus ----

interface ApiCase {
  id: string;
  category: string;
  call: string;
  args: unknown[];
  expect: { error?: string; code?: string; field?: string; message?: string; accepted?: boolean; result?: unknown; runs?: boolean; storedVerbatim?: boolean };
}
interface CliCase {
  id: string;
  category: string;
  args: unknown[];
  /** Variables that differ from the test environment's (an unreachable database, say). */
  env?: Record<string, string>;
  expect: { exitCode: number; code?: string; field?: string; message?: string; json?: unknown };
}
interface ProviderCase {
  id: string;
  category: string;
  provider?: string;
  requests?: number;
  handler?: string;
  job?: { type: string };
  outcomes?: Record<string, OutcomeSpec>;
  fault?: FaultSpec;
  batchRule?: Record<string, unknown>;
  strayLines?: string[];
  expect: {
    status?: string;
    requests?: Record<string, number>;
    errorCodes?: Record<string, number>;
    anomalies?: { unknownIds?: number; malformedLines?: number; duplicateLines?: number };
    retriedStep?: string;
    providerBatches?: number;
    deadLetter?: { step: string; errorClass: string; nonRetryable?: boolean; tryCount?: number; message: string };
  };
}

const CORPUS_PATH = path.join(__dirname, 'fixtures', 'bad-inputs.json');
const corpus = JSON.parse(readFileSync(CORPUS_PATH, 'utf8')) as { api: ApiCase[]; cli: CliCase[]; provider: ProviderCase[] };

const placeholders: Record<string, string> = { $UNKNOWN_UUID: randomUUID() };

const GENERATORS: Record<string, (spec: any) => unknown> = {
  $repeat: ([text, times]: [string, number]) => text.repeat(times),
  $requests: ({ count, prefix }: { count: number; prefix: string }) => chatRequests(count, `${prefix}-${randomUUID().slice(0, 8)}`),
  $fill: ({ count, with: value }: { count: number; with: unknown }) => new Array(count).fill(materialize(value)),
  $bigint: (digits: string) => BigInt(digits),
  $json: (value: unknown) => JSON.stringify(materialize(value)),
  /** A temporary file with these lines (removed with the test's folder); its path. */
  $file: (lines: string[]) => {
    const file = path.join(scratchDir, `${randomUUID()}.jsonl`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  },
};

const scratchDir = mkdtempSync(path.join(tmpdir(), 'bk-bad-inputs-'));

/** Replaces placeholders and runs generators (a one-key object whose key names a generator). */
function materialize(value: unknown): any {
  if (typeof value === 'string') return Object.hasOwn(placeholders, value) ? placeholders[value] : value;
  if (Array.isArray(value)) return value.map(materialize);
  if (value && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 1 && Object.hasOwn(GENERATORS, entries[0]![0])) return GENERATORS[entries[0]![0]]!(entries[0]![1]);
    return Object.fromEntries(entries.map(([key, item]) => [key, materialize(item)]));
  }
  return value;
}

// ---- A proxy in front of the fake provider that can append stray result lines ----

interface StrayProxy {
  url: string;
  arm(lines: string[]): void;
  disarm(): void;
  close(): Promise<void>;
}

async function startStrayProxy(target: string): Promise<StrayProxy> {
  const upstream = new URL(target);
  let armed: string[] | undefined;
  const server = createServer((req, res) => {
    const pathname = new URL(req.url ?? '/', 'http://proxy.invalid').pathname;
    const isResults = /^\/v1\/files\/[^/]+\/content$/.test(pathname) || /^\/v1\/messages\/batches\/[^/]+\/results$/.test(pathname);
    // The Host header is kept, so the fake builds Anthropic's absolute results_url on this proxy.
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      const lines = isResults && up.statusCode === 200 ? armed : undefined;
      if (lines) armed = undefined;
      const headers = { ...up.headers };
      if (lines) delete headers['content-length'];
      res.writeHead(up.statusCode ?? 502, headers);
      up.on('close', () => {
        if (!up.complete) res.destroy(); // an upstream cut (a truncate fault) stays a cut
      });
      up.pipe(res, { end: !lines });
      if (lines) up.on('end', () => res.end(lines.map((line) => `${line}\n`).join('')));
    });
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    arm: (lines) => {
      armed = lines;
    },
    disarm: () => {
      armed = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// ---- Environment ----

let env: TestEnvironment;
let proxy: StrayProxy;
let worker: Worker;
let running: Promise<void>;
/** The app's client, which knows the registered handler names (so unknown ones are refused before any write). */
let client: BatchkeeperClient;
let admin: BatchkeeperAdmin;

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  await createRecordingTables(env.pool);
  proxy = await startStrayProxy(env.fake.url);
  worker = await createBatchkeeperWorker({
    connection: env.nativeConnection,
    taskQueue: env.taskQueue,
    pool: env.pool,
    providers: createProviders({
      openai: { apiKey: TEST_API_KEY, baseURL: `${proxy.url}/v1`, maxRetries: 0 },
      anthropic: { apiKey: TEST_API_KEY, baseURL: proxy.url, maxRetries: 0 },
    }),
    handlers,
    retry: { defaults: { maximumAttempts: 3, initialIntervalMs: 100, maximumIntervalMs: 300 } },
    workflowBundle: await sharedWorkflowBundle(),
  });
  running = worker.run();
  client = new BatchkeeperClient({ client: env.temporal, pool: env.pool, taskQueue: env.taskQueue, handlers: Object.keys(handlers) });
  admin = new BatchkeeperAdmin(env.temporal, env.pool);

  // A batch that ran to the end: the subject of "does not apply" cases and the owner of a used idempotency key.
  const key = `used-${randomUUID()}`;
  const { batchId } = await client.submitBatch({
    provider: 'openai', model: 'gpt-4o-mini', requests: chatRequests(2, 'setup'), handler: 'record', idempotencyKey: key, pollScheduleMs: FAST_SCHEDULE_MS,
  });
  await client.waitForBatch(batchId, { timeoutMs: 60_000 });
  placeholders.$ENDED_BATCH_ID = batchId;
  placeholders.$USED_IDEMPOTENCY_KEY = key;
});

after(async () => {
  worker?.shutdown();
  await running?.catch(() => undefined);
  await proxy?.close();
  rmSync(scratchDir, { recursive: true, force: true });
  await env?.teardown();
});

/** Row count of every table: a rejected call must leave all of them as they were. */
async function tableCounts(): Promise<Record<string, number>> {
  const { rows } = await env.pool.query(
    `SELECT table_name AS name,
            (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text::int AS n
       FROM information_schema.tables
      WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
      ORDER BY 1`,
  );
  return Object.fromEntries(rows.map((row) => [row.name, row.n]));
}

async function workflowsOnQueue(): Promise<number> {
  return (await env.temporal.workflow.count(`TaskQueue = '${env.taskQueue}'`)).count;
}

function invoke(call: string, args: unknown[]): Promise<unknown> {
  const [target, method] = call.split('.') as ['client' | 'admin', string];
  const subject = (target === 'client' ? client : admin) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  assert.equal(typeof subject[method], 'function', `${call} exists`);
  return Promise.resolve().then(() => subject[method]!(...args));
}

function assertTypedError(error: unknown, expect: ApiCase['expect'] | CliCase['expect'] & { error?: string }): void {
  assert.ok(error, 'the call was rejected');
  const typed = error as BatchkeeperError & { field?: string };
  assert.ok(error instanceof BatchkeeperError, `a typed error, not ${(error as Error)?.name}: ${(error as Error)?.message}`);
  if ('error' in expect && expect.error) assert.equal(typed.name, expect.error, typed.message);
  if (expect.code) assert.equal(typed.code, expect.code, typed.message);
  if (expect.field) {
    assert.equal(typed.field, expect.field, typed.message);
    assert.ok(typed.message.startsWith(`${expect.field}: `), `the message names the field: ${typed.message}`);
  }
  if (expect.message) assert.match(typed.message, new RegExp(expect.message));
}

// ---- The corpus as a whole ----

test('the corpus: at least 40 cases over every category the issue names', (t) => {
  const all = [...corpus.api, ...corpus.cli, ...corpus.provider];
  const ids = all.map((item) => item.id);
  assert.equal(new Set(ids).size, ids.length, 'case ids are unique');
  assert.ok(all.length >= 40, `${all.length} cases`);
  const categories = new Map<string, number>();
  for (const item of all) categories.set(item.category, (categories.get(item.category) ?? 0) + 1);
  for (const needed of [
    'empty batch', 'custom id', 'over-limit size', 'unknown provider', 'model', 'unknown handler', 'wrong type', 'oversized metadata',
    'SQL injection', 'query-language injection', 'unknown id', 'truncated result file', 'non-JSON result file', 'non-JSON result lines',
    'results for ids never submitted', 'provider answers HTML',
  ]) {
    assert.ok(categories.has(needed), `category "${needed}" is covered`);
  }
  t.diagnostic(`${all.length} cases: ${corpus.api.length} API, ${corpus.cli.length} CLI, ${corpus.provider.length} provider`);
  t.diagnostic([...categories].map(([name, count]) => `${name}: ${count}`).join('; '));
});

// ---- Client API ----

describe('client API: rejected with a typed error, nothing written', () => {
  const rejected = corpus.api.filter((item) => !item.expect.accepted);
  let workflowsBefore = 0;
  let providerBatchesBefore = 0;

  before(async () => {
    workflowsBefore = await workflowsOnQueue();
    providerBatchesBefore = env.fake.createdBatches().length;
  });

  for (const item of rejected) {
    test(`${item.id} (${item.category})`, async () => {
      const args = materialize(item.args) as unknown[];
      const before_ = await tableCounts();
      const error = await invoke(item.call, args).then(() => undefined, (caught: unknown) => caught);
      assertTypedError(error, item.expect);
      assert.deepEqual(await tableCounts(), before_, 'no table changed');
    });
  }

  test('no rejected call started a workflow or created a provider batch', async () => {
    assert.equal(env.fake.createdBatches().length, providerBatchesBefore);
    await new Promise((resolve) => setTimeout(resolve, 1500)); // visibility is eventually consistent
    assert.equal(await workflowsOnQueue(), workflowsBefore);
  });
});

describe('client API: strings built to break SQL are stored and used verbatim', () => {
  for (const item of corpus.api.filter((entry) => entry.expect.accepted)) {
    test(`${item.id} (${item.category})`, { timeout: 90_000 }, async () => {
      const args = materialize(item.args) as unknown[];
      const result = await invoke(item.call, args);
      if ('result' in item.expect) assert.deepEqual(result, item.expect.result);
      if (item.expect.runs) {
        const input = args[0] as { requests: { customId: string; params: unknown }[]; metadata?: unknown };
        const { batchId } = result as { batchId: string };
        const batch = await client.waitForBatch(batchId, { timeoutMs: 60_000 });
        assert.equal(batch.status, 'ended');
        const { rows } = await env.pool.query(
          'SELECT custom_id, params, status, result FROM request_outcomes WHERE batch_id = $1 ORDER BY position', [batchId],
        );
        assert.deepEqual(rows.map((row) => row.custom_id), input.requests.map((request) => request.customId), 'custom ids stored verbatim');
        assert.deepEqual(rows.map((row) => row.params), input.requests.map((request) => request.params), 'request bodies stored verbatim');
        assert.deepEqual(rows.map((row) => row.status), input.requests.map(() => 'succeeded'), 'every result joined to its request');
        if (input.metadata) assert.deepEqual((await client.getBatch(batchId)).batch.metadata, input.metadata, 'metadata stored verbatim');
        const page = await client.listResults(batchId, { limit: 10 });
        assert.deepEqual(page.items.map((entry) => entry.customId), input.requests.map((request) => request.customId));
      }
      const tables = Object.keys(await tableCounts());
      for (const table of ['batches', 'batch_requests', 'dead_letters', 'jobs', 'event_log']) assert.ok(tables.includes(table), `${table} still exists`);
    });
  }
});

// ---- CLI ----


function runBatchkeeper(args: string[], overrides: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: env.databaseUrl,
    TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: 'default',
    BATCHKEEPER_TASK_QUEUE: env.taskQueue,
    BATCHKEEPER_OPERATOR: 'bad-inputs-test',
    ...overrides,
  });
}

describe('CLI: a non-zero exit and a message naming the cause', { concurrency: 3 }, () => {
  for (const item of corpus.cli) {
    test(`${item.id} (${item.category})`, { timeout: 60_000 }, async () => {
      const args = (materialize(item.args) as string[]).concat('--json');
      const before_ = await tableCounts();
      const run = await runBatchkeeper(args, item.env);
      const detail = `exit ${run.code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`;
      assert.equal(run.code, item.expect.exitCode, detail);
      const output = JSON.parse(run.stdout) as { error?: { code: string; message: string; field?: string } };
      if (item.expect.json !== undefined) assert.deepEqual(output, item.expect.json, detail);
      if (item.expect.exitCode !== 0) {
        assert.ok(output.error, detail);
        if (item.expect.code) assert.equal(output.error.code, item.expect.code, detail);
        if (item.expect.field) assert.equal(output.error.field, item.expect.field, detail);
        assert.match(run.stderr, /^error: /, 'one readable line on stderr');
        if (item.expect.message) assert.match(run.stderr, new RegExp(item.expect.message), detail);
        assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
      }
      assert.deepEqual(await tableCounts(), before_, 'nothing written');
    });
  }
});

// ---- Provider responses ----

async function requestStatuses(batchId: string): Promise<Record<string, number>> {
  const { rows } = await env.pool.query('SELECT status, count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 GROUP BY status', [batchId]);
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}

async function errorCodes(batchId: string): Promise<Record<string, number>> {
  const { rows } = await env.pool.query(
    'SELECT error_code, count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 AND error_code IS NOT NULL GROUP BY error_code', [batchId],
  );
  return Object.fromEntries(rows.map((row) => [row.error_code, row.n]));
}

async function runProviderCase(item: ProviderCase): Promise<void> {
  const { expect } = item;
  const createdBefore = env.fake.createdBatches().length;
  if (item.job) {
    const { jobId } = await env.client.startJob({ type: item.job.type });
    const letter = await waitFor(async () => (await env.client.getJob(jobId)).deadLetter, 30_000, `${item.id}: dead letter`);
    assertDeadLetter(letter, expect.deadLetter!);
    return;
  }
  const prefix = item.id;
  const requests = chatRequests(item.requests ?? 2, prefix);
  if (item.outcomes) env.fake.setOutcomes(Object.fromEntries(Object.entries(item.outcomes).map(([index, outcome]) => [`${prefix}-${index}`, outcome])));
  if (item.batchRule) env.fake.configure({ batchRules: [{ match: { customId: `${prefix}-0` }, ...item.batchRule }] });
  if (item.fault) env.fake.injectFault(item.fault);
  if (item.strayLines) proxy.arm(item.strayLines);
  // env.client knows no handler list: a handler name the worker lacks gets through to the worker on purpose.
  const { batchId } = await env.client.submitBatch({
    provider: item.provider!, model: 'model-x', requests, handler: item.handler ?? 'record', pollScheduleMs: FAST_SCHEDULE_MS,
  });
  if (expect.deadLetter) {
    const letter = await waitFor(async () => (await env.client.getBatch(batchId)).deadLetter, 30_000, `${item.id}: dead letter`);
    assertDeadLetter(letter, expect.deadLetter);
    // The letter is committed by an activity; the workflow parks when that activity's result reaches it.
    const state = await waitFor(async () => {
      const current = await env.client.batchState(batchId);
      return current.phase === 'dead_lettered' ? current : undefined;
    }, 10_000, `${item.id}: the workflow parked (phase dead_lettered), waiting for an operator`);
    assert.equal(state.phase, 'dead_lettered');
  } else {
    await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  }
  const { batch, steps } = await env.client.getBatch(batchId);
  if (expect.status) assert.equal(batch.status, expect.status);
  if (expect.requests) assert.deepEqual(await requestStatuses(batchId), expect.requests, 'per-request statuses');
  if (expect.errorCodes) assert.deepEqual(await errorCodes(batchId), expect.errorCodes);
  if (expect.anomalies) {
    const events = (await env.client.getTimeline('batch', batchId)).filter((event) => event.kind === 'results_anomalies');
    assert.equal(events.length, 1, 'anomalies are recorded once');
    const stored = { unknownIds: 0, malformedLines: 0, duplicateLines: 0, ...expect.anomalies };
    assert.deepEqual(events[0]!.detail, { part: 0, ...stored });
    // The handler is told the same counts (its summary once said 0 unknown ids while the event said 2).
    const { rows } = await env.pool.query(
      'SELECT unknown_ids, malformed_lines, duplicate_lines FROM public.handler_calls WHERE batch_id = $1', [batchId],
    );
    assert.deepEqual(rows, [{ unknown_ids: stored.unknownIds, malformed_lines: stored.malformedLines, duplicate_lines: stored.duplicateLines }], "the handler's summary");
  }
  if (expect.retriedStep) {
    const step = steps.find((entry) => entry.step === expect.retriedStep);
    assert.ok(step?.lastError && step.succeededAt, `${expect.retriedStep} failed (${step?.lastError}) and then succeeded`);
  }
  if (expect.providerBatches !== undefined) assert.equal(env.fake.createdBatches().length - createdBefore, expect.providerBatches);
}

function assertDeadLetter(letter: { step: string; errorClass: string; nonRetryable: boolean; tryCount: number; errorMessage: string }, expect: NonNullable<ProviderCase['expect']['deadLetter']>): void {
  assert.equal(letter.step, expect.step, letter.errorMessage);
  assert.equal(letter.errorClass, expect.errorClass, letter.errorMessage);
  if (expect.nonRetryable !== undefined) assert.equal(letter.nonRetryable, expect.nonRetryable);
  if (expect.tryCount !== undefined) assert.equal(letter.tryCount, expect.tryCount);
  assert.match(letter.errorMessage, new RegExp(expect.message));
  assert.ok(!letter.errorMessage.includes(TEST_API_KEY), 'no API key in the error');
  assert.doesNotMatch(letter.errorMessage, /<html|<body|Fake reply/i, 'no response body in the error');
}

describe('provider responses: only what they touch fails', () => {
  for (const item of corpus.provider) {
    test(`${item.id} (${item.category})`, { timeout: 90_000 }, async () => {
      try {
        await runProviderCase(item);
      } finally {
        env.fake.clearFaults();
        env.fake.configure({ batchRules: [] });
        proxy.disarm();
      }
    });
  }

  test('a provider answering HTML for one batch dead-letters that batch only; the batch next to it ends normally', { timeout: 90_000 }, async () => {
    env.fake.configure({ batchRules: [{ match: { customId: 'victim-0' }, processingMs: 3000 }] });
    try {
      const [victim, bystander] = await Promise.all([
        env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(3, 'victim'), handler: 'record', pollScheduleMs: [300] }),
        env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(3, 'bystander'), handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS }),
      ]);
      const providerBatchId = await waitFor(async () => (await env.client.getBatch(victim.batchId)).batch.providerBatchId, 20_000, 'victim submitted');
      env.fake.injectFault({ route: 'openai.batches.retrieve', kind: 'html', status: 200, batchId: providerBatchId, count: 1000 });
      const ended = await env.client.waitForBatch(bystander.batchId, { timeoutMs: 60_000 });
      assert.equal(ended.status, 'ended');
      assert.deepEqual(await requestStatuses(bystander.batchId), { succeeded: 3 });
      const letter = await waitFor(async () => (await env.client.getBatch(victim.batchId)).deadLetter, 30_000, 'victim dead letter');
      assert.equal(letter.step, 'poll');
      assert.match(letter.errorMessage, /unexpected response/);
      assert.deepEqual(await requestStatuses(victim.batchId), { pending: 3 }, 'nothing half-written');
    } finally {
      env.fake.clearFaults();
      env.fake.configure({ batchRules: [] });
    }
  });
});

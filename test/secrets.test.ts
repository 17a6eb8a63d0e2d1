/**
 * Secrets and data stay out of Temporal. The stock worker (worker/main.ts) runs as a subprocess with marker API keys
 * and every log line captured (BATCHKEEPER_LOG_LEVEL=TRACE: the JSON lines of the SDK logger and of the core, stdout and stderr). Batches carry
 * marker request content, metadata and custom ids (the fake provider's answers quote the custom id, so result bodies
 * carry a marker too); a job carries a marker input that it echoes as its output; the provider rejects one poll with
 * an error body that quotes the API key. Then every history on the task queue (all payloads decoded), the search
 * attributes, memos, summaries and query answers, and every captured log line are scanned: none may hold a marker.
 * PostgreSQL, where data belongs, must hold them (so the scan is not vacuous).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { BatchkeeperAdmin } from '../client/admin';
import { batchStateQuery } from '../domain/definitions';
import { anthropicErrorBody } from '../testing/fake-provider/anthropic-format';
import { FAST_SCHEDULE_MS, createTestEnvironment, type TestEnvironment } from './support/environment';
import { waitFor } from './support/wait';

const tag = randomUUID().replace(/-/g, '').slice(0, 12);
const OPENAI_KEY = `sk-proj-marker${tag}`;
const ANTHROPIC_KEY = `anthropic-marker-key-${tag}`;
const CONTENT = `marker-request-content-${tag}`;
const METADATA = `marker-metadata-${tag}`;
const CUSTOM_ID = `marker-id-${tag}`;
const RESULT = `Fake reply to ${CUSTOM_ID}`;
const JOB_INPUT = `marker-job-input-${tag}`;

const MARKERS: Record<string, string> = {
  'OpenAI API key': OPENAI_KEY,
  'Anthropic API key': ANTHROPIC_KEY,
  'request content': CONTENT,
  'batch metadata': METADATA,
  'custom id': CUSTOM_ID,
  'result content': RESULT,
  'job input and output': JOB_INPUT,
};

const ROOT = path.join(__dirname, '..');

let env: TestEnvironment;
let child: ChildProcess;
let logs = '';

before(async () => {
  env = await createTestEnvironment({ startWorker: false });
  // The stock worker exactly as `npm run worker` runs it, its JSON log lines at TRACE (the SDK core's too).
  child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'worker', 'main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: env.databaseUrl,
      TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
      TEMPORAL_NAMESPACE: 'default',
      BATCHKEEPER_TASK_QUEUE: env.taskQueue,
      BATCHKEEPER_LOG_LEVEL: 'TRACE',
      OPENAI_API_KEY: OPENAI_KEY,
      OPENAI_BASE_URL: env.fake.openaiBaseUrl,
      ANTHROPIC_API_KEY: ANTHROPIC_KEY,
      ANTHROPIC_BASE_URL: env.fake.anthropicBaseUrl,
      BATCHKEEPER_RETRY_DEFAULTS: JSON.stringify({ maximumAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 2, maximumIntervalMs: 300 }),
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  child.stdout!.on('data', (chunk) => (logs += chunk));
  if (process.env.BATCHKEEPER_SECRETS_LOG) child.stdout!.on('data', (chunk) => process.stderr.write(chunk));
  child.stderr!.on('data', (chunk) => (logs += chunk));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${logs.slice(-3000)}`)), 60_000);
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}:\n${logs.slice(-3000)}`));
    });
  });
});

after(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  await env?.teardown();
});

/** Strings inside a JSON history: the raw text plus every payload's data decoded from base64. */
function historyTexts(json: string): string[] {
  const texts = [json];
  const walk = (value: unknown) => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      if (record.metadata && typeof record.metadata === 'object' && typeof record.data === 'string') {
        texts.push(Buffer.from(record.data, 'base64').toString('utf8'));
        for (const item of Object.values(record.metadata as Record<string, string>)) texts.push(Buffer.from(item, 'base64').toString('utf8'));
      }
      Object.values(record).forEach(walk);
    }
  };
  walk(JSON.parse(json));
  return texts;
}

function leaks(texts: string[]): string[] {
  return Object.entries(MARKERS).filter(([, marker]) => texts.some((text) => text.includes(marker))).map(([name]) => name);
}

let parkedStateText = '';

test('batches, a job and a provider error that quotes the API key run on the stock worker', { timeout: 120_000 }, async () => {
  const requests = [0, 1, 2].map((index) => ({
    customId: index === 0 ? CUSTOM_ID : `plain-${tag}-${index}`,
    params: { max_tokens: 16, messages: [{ role: 'user', content: `${CONTENT} #${index}` }] },
  }));
  const openai = await env.client.submitBatch({
    provider: 'openai', model: 'gpt-4o-mini', requests, handler: 'log-summary', metadata: { purpose: METADATA }, pollScheduleMs: FAST_SCHEDULE_MS,
  });
  assert.equal((await env.client.waitForBatch(openai.batchId, { timeoutMs: 60_000 })).status, 'ended');

  // The provider answers the first poll with a 401 whose body quotes the key (as real providers do).
  env.fake.injectFault({
    route: 'anthropic.batches.retrieve', kind: 'http_error', status: 401, count: 1,
    body: anthropicErrorBody('authentication_error', `invalid x-api-key: ${ANTHROPIC_KEY}`),
  });
  const anthropic = await env.client.submitBatch({
    provider: 'anthropic', model: 'claude-x', requests: requests.map((request, index) => ({ ...request, customId: index === 0 ? CUSTOM_ID : `a-${tag}-${index}` })),
    handler: 'log-summary', metadata: { purpose: METADATA }, pollScheduleMs: FAST_SCHEDULE_MS,
  });
  const letter = await waitFor(async () => (await env.client.getBatch(anthropic.batchId)).deadLetter, 30_000, 'dead letter');
  assert.equal(letter.errorClass, 'ProviderRejected');
  assert.match(letter.errorMessage, /HTTP 401/);
  // The letter is committed by an activity; the workflow parks (and its state shows the letter) a moment later.
  parkedStateText = await waitFor(async () => {
    const state = await env.temporal.workflow.getHandle(anthropic.workflowId).query(batchStateQuery);
    return state.deadLetter ? JSON.stringify(state) : undefined;
  }, 10_000, 'the parked workflow shows its dead letter');
  await new BatchkeeperAdmin(env.temporal, env.pool).requeueDeadLetter(letter.id, { resolvedBy: 'secrets-test' });
  assert.equal((await env.client.waitForBatch(anthropic.batchId, { timeoutMs: 60_000 })).status, 'ended');

  const { jobId } = await env.client.startJob({ type: 'echo', input: { note: JOB_INPUT } });
  assert.equal((await env.client.waitForJob(jobId, { timeoutMs: 30_000 })).status, 'succeeded');

  // Where the data belongs, it is: PostgreSQL holds bodies, results, metadata and the job's input and output.
  const { rows } = await env.pool.query(
    `SELECT (SELECT count(*) FROM batch_requests WHERE params::text LIKE '%' || $1 || '%')::int AS content,
            (SELECT count(*) FROM request_results WHERE result::text LIKE '%' || $2 || '%')::int AS results,
            (SELECT count(*) FROM batches WHERE metadata::text LIKE '%' || $3 || '%')::int AS metadata,
            (SELECT count(*) FROM jobs WHERE input::text LIKE '%' || $4 || '%' AND output::text LIKE '%' || $4 || '%')::int AS job`,
    [CONTENT, RESULT, METADATA, JOB_INPUT],
  );
  assert.deepEqual(rows[0], { content: 6, results: 2, metadata: 2, job: 1 });
});

test('no workflow history on the task queue holds a key, a body, a result, metadata or job data', async () => {
  const histories: string[] = [];
  await waitFor(async () => (await env.temporal.workflow.count(`TaskQueue = '${env.taskQueue}'`)).count >= 3, 20_000, 'visibility');
  for await (const info of env.temporal.workflow.list({ query: `TaskQueue = '${env.taskQueue}'` })) {
    const handle = env.temporal.workflow.getHandle(info.workflowId, info.runId);
    const json = historyToJSON(await handle.fetchHistory());
    histories.push(info.workflowId);
    const texts = historyTexts(json);
    const subjectId = info.workflowId.replace(/^(batch|job)-/, '');
    assert.ok(texts.slice(1).some((text) => text.includes(subjectId)), 'payloads were decoded (the workflow input names its subject)');
    assert.deepEqual(leaks(texts), [], `history of ${info.workflowId}`);
    // Visibility: search attributes, memo, and the Temporal Web summary and details.
    const description = await handle.describe();
    const visible = [
      JSON.stringify(description.typedSearchAttributes.getAll().map((pair) => [pair.key.name, pair.value])),
      JSON.stringify(description.searchAttributes ?? {}),
      JSON.stringify((await description.memo) ?? {}),
      String((await description.staticSummary) ?? ''),
      String((await description.staticDetails) ?? ''),
    ];
    assert.deepEqual(leaks(visible), [], `search attributes, memo and summary of ${info.workflowId}`);
  }
  assert.ok(histories.length >= 3, `histories scanned: ${histories.join(', ')}`);
  assert.ok(parkedStateText.includes('ProviderRejected'), 'the parked workflow answered its state query');
  assert.deepEqual(leaks([parkedStateText]), [], 'the state query of the parked workflow (it shows the dead letter message)');
});

test('no captured worker log line holds a key, a body, a result, metadata or job data', () => {
  const lines = logs.split('\n').filter(Boolean);
  assert.ok(lines.length > 50, `logs were captured (${lines.length} lines)`);
  assert.ok(lines.some((line) => /^\{"time":"[^"]+","level":"(DEBUG|TRACE)"/.test(line)), 'debug-level logs were captured');
  assert.ok(lines.some((line) => /"sdkComponent":"(worker|activity|workflow)"/.test(line) && /"activityType"/.test(line)), 'SDK activity and workflow logs were captured');
  assert.ok(lines.some((line) => /"message":"batch [^"]+ ended: \d+ succeeded/.test(line)), "the example handler's summary line was captured");
  assert.ok(logs.includes('HTTP 401'), 'the failed poll was logged');
  const leaked = Object.entries(MARKERS).filter(([, marker]) => logs.includes(marker));
  assert.deepEqual(
    leaked.map(([name, marker]) => `${name}: ${lines.find((line) => line.includes(marker))?.slice(0, 300)}`),
    [],
  );
});

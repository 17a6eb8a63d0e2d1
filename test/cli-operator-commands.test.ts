/**
 * The operator commands beyond inspecting and resolving (bin/batchkeeper.ts as a subprocess): --version, a batch
 * submitted from a JSONL file and waited for, every result exported as JSONL (to stdout and to a file, all pages),
 * a wait that times out, progress on stderr while a bulk action works, unreachable services named with where.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { BatchHandlerRegistry } from '../activities/handlers';
import { chatRequests, createTestEnvironment, FAST_SCHEDULE_MS, type TestEnvironment } from './support/environment';
import { runCli } from './support/run-cli';
import { waitFor } from './support/wait';

let handlerFixed = false;
const handlers: BatchHandlerRegistry = {
  note: { async onComplete() {} },
  exploding: {
    async onComplete() {
      if (!handlerFixed) throw new Error('downstream store unavailable');
    },
  },
};

let env: TestEnvironment;
let dir: string;

before(async () => {
  env = await createTestEnvironment({ handlers, retry: { defaults: { maximumAttempts: 1 } } });
  dir = mkdtempSync(path.join(tmpdir(), 'bk-cli-files-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await env?.teardown();
});

function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return runCli(args, {
    PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: env.databaseUrl, TEMPORAL_ADDRESS: process.env.BATCHKEEPER_TEST_TEMPORAL_ADDRESS,
    BATCHKEEPER_TASK_QUEUE: env.taskQueue, BATCHKEEPER_OPERATOR: 'operator-commands-test', ...extraEnv,
  });
}

test('--version prints the package version', async () => {
  const run = await cli(['--version']);
  assert.equal(run.code, 0, run.stderr);
  const { version } = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
  assert.equal(run.stdout.trim(), `batchkeeper ${version}`);
  assert.match((await cli(['--help'])).stdout, /batchkeeper --version/);
});

test('batches submit --file: both line formats, --wait prints the outcome', { timeout: 120_000 }, async () => {
  const file = path.join(dir, 'requests.jsonl');
  writeFileSync(file, [
    JSON.stringify({ customId: 'own-format', params: { max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } }),
    '',
    JSON.stringify({ custom_id: 'openai-format', method: 'POST', url: '/v1/chat/completions', body: { model: 'model-x', max_tokens: 8, messages: [] } }),
  ].join('\n'));
  const run = await cli(['batches', 'submit', '--file', file, '--provider', 'openai', '--model', 'model-x', '--handler', 'note',
    '--poll-schedule', '200ms', '--metadata', '{"source":"cli"}', '--wait', '--timeout', '60s', '--json']);
  assert.equal(run.code, 0, run.stderr);
  const output = JSON.parse(run.stdout);
  assert.equal(output.status, 'ended');
  assert.equal(output.requests, 2);
  assert.match(run.stderr, new RegExp(`submitted batch ${output.batchId} \\(2 requests\\); waiting`));
  const { items } = await env.client.listResults(output.batchId);
  assert.deepEqual(items.map((item) => [item.customId, item.status]), [['own-format', 'succeeded'], ['openai-format', 'succeeded']]);
  const { rows } = await env.pool.query('SELECT params, metadata FROM request_outcomes r JOIN batches b ON b.id = r.batch_id WHERE r.batch_id = $1 ORDER BY position', [output.batchId]);
  assert.deepEqual(rows[1].params, { max_tokens: 8, messages: [] }, 'the body without the model, which the batch carries');
  assert.deepEqual(rows[0].metadata, { source: 'cli' });
});

test('batches results --format jsonl exports every page to stdout and to a file, never overwriting one', { timeout: 120_000 }, async () => {
  const requests = chatRequests(2300, 'export');
  const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests, pollScheduleMs: FAST_SCHEDULE_MS });
  await env.client.waitForBatch(batchId, { timeoutMs: 90_000 });

  const toStdout = await cli(['batches', 'results', batchId, '--format', 'jsonl']);
  assert.equal(toStdout.code, 0, toStdout.stderr);
  const lines = toStdout.stdout.trim().split('\n').map((line) => JSON.parse(line));
  assert.equal(lines.length, 2300, 'all three pages');
  assert.deepEqual(lines.map((line) => line.customId), requests.map((request) => request.customId), 'in submission order');
  assert.ok(lines.every((line) => line.status === 'succeeded' && line.result));
  assert.match(toStdout.stderr, /exported 2300 results/);

  const file = path.join(dir, 'results.jsonl');
  const toFile = await cli(['batches', 'results', batchId, '--format', 'jsonl', '--output', file, '--status', 'succeeded', '--json']);
  assert.equal(toFile.code, 0, toFile.stderr);
  assert.deepEqual(JSON.parse(toFile.stdout), { batchId, file, written: 2300 });
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2300);
  const again = await cli(['batches', 'results', batchId, '--format', 'jsonl', '--output', file, '--json']);
  assert.equal(again.code, 2);
  assert.equal(JSON.parse(again.stdout).error.field, '--output');
  assert.deepEqual(readdirSync(dir).filter((name) => name.includes('partial')), [], 'no partial file left');
  const unknown = await cli(['batches', 'results', '00000000-0000-4000-8000-000000000000', '--format', 'jsonl', '--output', path.join(dir, 'none.jsonl')]);
  assert.equal(unknown.code, 2);
  assert.equal(existsSync(path.join(dir, 'none.jsonl')), false, 'an unknown batch writes no file');
});

test('batches wait --timeout gives up with exit 4 while the batch goes on', { timeout: 60_000 }, async () => {
  env.fake.configure({ batchRules: [{ match: { customId: 'slow-0' }, processingMs: 600_000 }] });
  const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'model-x', requests: chatRequests(1, 'slow'), pollScheduleMs: [60_000] });
  const run = await cli(['batches', 'wait', batchId, '--timeout', '1s', '--json']);
  assert.equal(run.code, 4, run.stderr);
  assert.equal(JSON.parse(run.stdout).error.code, 'timeout');
  assert.match(run.stderr, /still running after 1000 ms of waiting/);
  assert.equal((await env.client.getBatch(batchId)).batch.handlerDispatchedAt, null);
});

test('bulk requeue shows its progress on stderr while stdout stays the result', { timeout: 120_000 }, async () => {
  handlerFixed = false;
  const batches = await Promise.all(['bulk-a', 'bulk-b', 'bulk-c'].map((prefix) => env.client.submitBatch({
    provider: 'anthropic', model: 'model-x', requests: chatRequests(1, prefix), handler: 'exploding', pollScheduleMs: FAST_SCHEDULE_MS,
  })));
  for (const { batchId } of batches) await waitFor(async () => (await env.client.getBatch(batchId)).deadLetter, 30_000, 'dead letter');
  handlerFixed = true;
  const run = await cli(['dead-letters', 'requeue-all', '--handler', 'exploding', '--json']);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout).done.length, 3);
  assert.match(run.stderr, /^3 dead letters match; working\.\.\.$/m);
  assert.match(run.stderr, /^requeued 3 of 3$/m);
});

test('an unreachable database or Temporal is named with where, exit 3, no password printed', async () => {
  const database = await cli(['failed', '--json'], { DATABASE_URL: 'postgres://batchkeeper:pw-never-printed@127.0.0.1:1/batchkeeper' });
  assert.equal(database.code, 3, database.stderr);
  assert.equal(JSON.parse(database.stdout).error.code, 'unavailable');
  assert.match(database.stderr, /^error: cannot reach PostgreSQL at 127\.0\.0\.1:1: ECONNREFUSED/);
  assert.doesNotMatch(database.stderr + database.stdout, /pw-never-printed/);
  const temporal = await cli(['jobs', 'list', '--json'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
  assert.equal(temporal.code, 3, temporal.stderr);
  assert.match(temporal.stderr, /^error: cannot reach Temporal at 127\.0\.0\.1:1/);
});

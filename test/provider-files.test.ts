/**
 * Provider files after a run: the workflow deletes each batch's input, output and error files at the provider once
 * results are stored and the handler ran (OpenAI, xAI, Gemini through their SDKs against the fake, which records
 * every DELETE), uploads carry `expires_after` where the API has it, a failing delete is retried without losing
 * results, a file already gone counts as deleted, and deletion can be turned off. Also the endpoint per batch:
 * Responses and embeddings batches end to end, and endpoints a provider does not support refused up front.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ValidationError } from '../client/errors';
import { loadConfig } from '../config/load';
import { OpenAIBatchProvider } from '../providers/openai';
import { createTestEnvironment, FAST_SCHEDULE_MS, TEST_API_KEY, type TestEnvironment } from './support/environment';
import { createRecordingTables, handlers } from './support/recording-handlers';

let env: TestEnvironment;
let keeping: TestEnvironment;

const RETRY = { defaults: { initialIntervalMs: 100, maximumIntervalMs: 300, maximumAttempts: 4 } };

before(async () => {
  env = await createTestEnvironment({
    handlers,
    retry: RETRY,
    extraProviders: (fake) => ({
      openai: { apiKey: TEST_API_KEY, baseURL: fake.openaiBaseUrl, maxRetries: 0, fileExpirySeconds: 86_400 },
      // A tiny inline limit: every Gemini batch goes through an uploaded input file and a responses file.
      gemini: { apiKey: TEST_API_KEY, baseURL: fake.geminiBaseUrl, maxRetries: 0, inlineLimitBytes: 10 },
      xai: { apiKey: TEST_API_KEY, baseURL: fake.xaiBaseUrl, maxRetries: 0 },
    }),
  });
  await createRecordingTables(env.pool);
});
after(async () => {
  await env?.teardown();
  await keeping?.teardown();
});

const PARAMS = {
  openai: (id: string) => ({ max_tokens: 16, messages: [{ role: 'user', content: `hello ${id}` }] }),
  xai: (id: string) => ({ max_tokens: 16, messages: [{ role: 'user', content: `hello ${id}` }] }),
  gemini: (id: string) => ({ contents: [{ role: 'user', parts: [{ text: `hello ${id}` }] }] }),
};

function requestsFor(provider: keyof typeof PARAMS, prefix: string, count = 4) {
  return Array.from({ length: count }, (_, i) => ({ customId: `${prefix}-${i}`, params: PARAMS[provider](`${prefix}-${i}`) }));
}

async function run(target: TestEnvironment, provider: keyof typeof PARAMS, prefix: string, extra: Record<string, unknown> = {}) {
  const requests = requestsFor(provider, prefix);
  const { batchId } = await target.client.submitBatch({
    provider, model: `${provider}-model`, requests, handler: 'record', pollScheduleMs: FAST_SCHEDULE_MS, ...extra,
  });
  await target.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  // waitForBatch returns once the handler ran; the file deletion step comes after it.
  await target.temporal.workflow.getHandle(`batch-${batchId}`).result();
  return { batchId, providerBatchIds: (await target.pool.query('SELECT provider_batch_id FROM provider_batches WHERE batch_id = $1', [batchId])).rows.map((row) => row.provider_batch_id as string) };
}

async function succeeded(target: TestEnvironment, batchId: string): Promise<number> {
  const { rows } = await target.pool.query(`SELECT count(*)::int AS n FROM request_outcomes WHERE batch_id = $1 AND status = 'succeeded' AND result IS NOT NULL`, [batchId]);
  return rows[0].n;
}

for (const provider of ['openai', 'xai', 'gemini'] as const) {
  test(`${provider}: after a full run no file of the batch is left at the provider; results stay in PostgreSQL`, { timeout: 120_000 }, async () => {
    const before = new Set(env.fake.files().deleted.map((file) => file.id));
    const { batchId } = await run(env, provider, `${provider}-files`);
    assert.equal(await succeeded(env, batchId), 4, 'every result stored');
    const left = env.fake.files().left.filter((file) => file.provider === provider);
    assert.deepEqual(left, [], `files left at ${provider}`);
    const deleted = env.fake.files().deleted.filter((file) => file.provider === provider && !before.has(file.id));
    // OpenAI: input + output file; Gemini: input + responses file; xAI: the input file (results are pages).
    assert.equal(deleted.length, provider === 'xai' ? 1 : 2, `files deleted at ${provider}: ${JSON.stringify(deleted)}`);
    const { rows } = await env.pool.query('SELECT files_deleted_at, input_file_id FROM provider_batches WHERE batch_id = $1', [batchId]);
    assert.ok(rows[0].files_deleted_at instanceof Date, 'the part is stamped');
    assert.ok(deleted.some((file) => file.id === rows[0].input_file_id), 'the stored input file is the one deleted');
    const events = await env.pool.query(`SELECT detail FROM event_log WHERE subject_id = $1 AND kind = 'provider_files_deleted'`, [batchId]);
    assert.deepEqual(events.rows.map((row) => row.detail), [{ parts: 1, files: deleted.length }]);
    // The deletion read no status: the files are those the poll that saw the batch end named. The provider saw one
    // status read per poll and the results step's one.
    const { rows: [part] } = await env.pool.query(
      'SELECT p.provider_batch_id, b.poll_count FROM provider_batches p JOIN batches b ON b.id = p.batch_id WHERE p.batch_id = $1', [batchId]);
    assert.equal(env.fake.counters(part.provider_batch_id)?.retrieve, part.poll_count + 1, 'status reads: the polls and the results step');
  });
}

test('openai: uploads carry expires_after and the batch output_expires_after (fileExpirySeconds)', { timeout: 120_000 }, async () => {
  env.fake.configure({ processingMs: 60_000 });
  try {
    const requests = requestsFor('openai', 'expiry', 2);
    const { batchId } = await env.client.submitBatch({ provider: 'openai', model: 'openai-model', requests, pollScheduleMs: [60_000] });
    let inputs: ReturnType<typeof env.fake.files>['left'] = [];
    for (let i = 0; i < 100 && inputs.length === 0; i++) {
      const { rows } = await env.pool.query('SELECT input_file_id FROM provider_batches WHERE batch_id = $1 AND input_file_id IS NOT NULL', [batchId]);
      inputs = env.fake.files().left.filter((file) => file.id === rows[0]?.input_file_id);
      if (inputs.length === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual(inputs.map((file) => file.expiresAfter), [{ anchor: 'created_at', seconds: 86_400 }]);
    const { rows } = await env.pool.query('SELECT provider_batch_id FROM provider_batches WHERE batch_id = $1', [batchId]);
    env.fake.completeNow(rows[0].provider_batch_id);
    await env.client.pollNow(batchId);
    await env.temporal.workflow.getHandle(`batch-${batchId}`).result();
    assert.deepEqual(env.fake.files().left.filter((file) => file.provider === 'openai'), []);
  } finally {
    env.fake.configure({ processingMs: 300 });
  }
});

test('a failing delete is retried (results intact); a file already gone at the provider counts as deleted', { timeout: 120_000 }, async () => {
  env.fake.injectFault({ route: 'openai.files.delete', status: 500, count: 2 });
  const { batchId } = await run(env, 'openai', 'flaky-delete');
  assert.equal(await succeeded(env, batchId), 4);
  assert.deepEqual(env.fake.files().left.filter((file) => file.provider === 'openai'), []);
  const { rows } = await env.pool.query(`SELECT attempt FROM step_attempts WHERE subject_id = $1 AND step = 'delete_files'`, [batchId]);
  // Every file is tried in an attempt: the first meets both 500s (input and output file), the second succeeds.
  assert.equal(rows[0].attempt, 2, 'one failed attempt, then success');
  assert.equal(env.fake.state().faults.pending.length, 0, 'both injected failures were met');

  // The provider deletes the file but the answer is lost: the retry meets a 404 for it, which counts as deleted.
  env.fake.injectFault({ route: 'openai.files.delete', kind: 'drop_response', count: 1 });
  const second = await run(env, 'openai', 'already-gone');
  assert.deepEqual(env.fake.files().left.filter((file) => file.provider === 'openai'), []);
  const { rows: tries } = await env.pool.query(`SELECT attempt FROM step_attempts WHERE subject_id = $1 AND step = 'delete_files'`, [second.batchId]);
  assert.equal(tries[0].attempt, 2, 'the lost answer was retried once');
  const again = await fetch(`${env.fake.openaiBaseUrl}/files/${encodeURIComponent(env.fake.files().deleted.at(-1)!.id)}`, {
    method: 'DELETE', headers: { authorization: `Bearer ${TEST_API_KEY}` },
  });
  assert.equal(again.status, 404, 'the fake answers 404 for a deleted file, as the API does');
  assert.equal(await succeeded(env, second.batchId), 4);
});

test('deleteFiles off: the files stay at the provider', { timeout: 120_000 }, async () => {
  keeping = await createTestEnvironment({
    handlers,
    retry: RETRY,
    extraProviders: (fake) => ({ openai: { apiKey: TEST_API_KEY, baseURL: fake.openaiBaseUrl, maxRetries: 0, deleteFiles: false } }),
  });
  await createRecordingTables(keeping.pool);
  const { batchId } = await run(keeping, 'openai', 'kept');
  assert.equal(await succeeded(keeping, batchId), 4);
  assert.deepEqual(keeping.fake.files().left.map((file) => file.kind).sort(), ['input', 'output']);
  assert.deepEqual(keeping.fake.files().deleted, []);
});

test('endpoint per batch: a Responses batch and an embeddings batch end to end through the OpenAI SDK', { timeout: 120_000 }, async () => {
  const responses = await env.client.submitBatch({
    provider: 'openai', model: 'gpt-resp', endpoint: '/v1/responses', pollScheduleMs: FAST_SCHEDULE_MS,
    requests: [{ customId: 'resp-0', params: { input: 'Say hi', reasoning: { effort: 'low' } } }],
  });
  const embeddings = await env.client.submitBatch({
    provider: 'openai', model: 'text-embedding-3-small', endpoint: '/v1/embeddings', pollScheduleMs: FAST_SCHEDULE_MS,
    requests: [{ customId: 'emb-0', params: { input: ['one', 'two'] } }],
  });
  for (const { batchId } of [responses, embeddings]) await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  const row = async (batchId: string) => (await env.pool.query(
    'SELECT status, result, input_tokens, output_tokens, reasoning_tokens FROM request_outcomes WHERE batch_id = $1', [batchId],
  )).rows[0];
  const resp = await row(responses.batchId);
  assert.equal(resp.status, 'succeeded');
  assert.equal(resp.result.object, 'response', 'the provider ran it as a Responses request');
  assert.ok(resp.input_tokens > 0 && resp.reasoning_tokens === 7, 'Responses usage read (input_tokens, output_tokens_details)');
  const emb = await row(embeddings.batchId);
  assert.equal(emb.status, 'succeeded');
  assert.equal(emb.result.object, 'list');
  assert.equal(emb.result.data.length, 2);
  assert.ok(emb.input_tokens > 0 && emb.output_tokens === 0);
  const batch = (await env.client.getBatch(embeddings.batchId)).batch;
  assert.equal(batch.endpoint, '/v1/embeddings');
  const created = env.fake.batch(env.fake.createdBatches().find((info) => info.batchkeeperBatchId === embeddings.batchId)!.id);
  assert.equal(created?.endpoint, '/v1/embeddings');
});

test('endpoint per batch is validated per provider before anything is written', async () => {
  const base = { model: 'm', requests: [{ customId: 'a', params: { input: 'x' } }] };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ provider: 'anthropic', endpoint: '/v1/embeddings' }, /anthropic takes one kind of request only/],
    [{ provider: 'gemini', endpoint: '/v1/responses' }, /gemini takes one kind of request only/],
    [{ provider: 'xai', endpoint: '/v1/embeddings' }, /not an endpoint xai batches support; supported: \/v1\/chat\/completions/],
    [{ provider: 'openai', endpoint: '/v1/images' }, /not an endpoint openai batches support/],
    [{ provider: 'openai', endpoint: 42 }, /must be a string/],
    [{ provider: 'openai', endpoint: '/v1/embeddings', requests: [{ customId: 'a', params: { messages: [] } }] }, /params\.input: is required by the embeddings endpoint/],
  ];
  const { rows: before } = await env.pool.query('SELECT count(*)::int AS n FROM batches');
  for (const [input, message] of cases) {
    await assert.rejects(env.client.submitBatch({ ...base, ...input } as never), (error: unknown) => {
      assert.ok(error instanceof ValidationError, String(error));
      assert.match(String((error as Error).message), message);
      return true;
    });
  }
  const { rows: afterRows } = await env.pool.query('SELECT count(*)::int AS n FROM batches');
  assert.equal(afterRows[0].n, before[0].n, 'nothing written');
});

test('configuration: deletion, file expiry, retention and the price rates from the environment', () => {
  const base = { OPENAI_API_KEY: 'k', XAI_API_KEY: 'x', DATABASE_URL: 'postgres://localhost/db' };
  const defaults = loadConfig(base, ['providers', 'worker']);
  assert.deepEqual(defaults.providers.openai, { apiKey: 'k' }, 'defaults live in the adapters: deletion on, 7-day expiry');
  assert.equal(defaults.worker.retentionDays, 0, 'retention off by default');
  assert.equal(new OpenAIBatchProvider({ apiKey: 'k' }).deleteFiles !== undefined, true);

  const set = loadConfig({
    ...base, BATCHKEEPER_DELETE_PROVIDER_FILES: '0', BATCHKEEPER_PROVIDER_FILE_EXPIRY_S: '0', BATCHKEEPER_RETENTION_DAYS: '90',
    BATCHKEEPER_PRICES: JSON.stringify({ models: { openai: { m: { inputPerMTokUsd: 1, outputPerMTokUsd: 2, cachedInputPerMTokUsd: 0.1, reasoningPerMTokUsd: 3 } } } }),
  }, ['providers', 'worker']);
  assert.deepEqual(set.providers.openai, { apiKey: 'k', deleteFiles: false, fileExpirySeconds: 0 });
  assert.deepEqual(set.providers.xai, { apiKey: 'x', deleteFiles: false });
  assert.equal(set.worker.retentionDays, 90);
  assert.equal(set.worker.prices?.models.openai?.m?.cachedInputPerMTokUsd, 0.1);
  assert.equal(new OpenAIBatchProvider(set.providers.openai!).deleteFiles, undefined, 'deletion off: no deleteFiles at all');

  assert.throws(() => loadConfig({ ...base, BATCHKEEPER_PROVIDER_FILE_EXPIRY_S: '60' }, ['providers']), /BATCHKEEPER_PROVIDER_FILE_EXPIRY_S must be 0 or from 3600 to 2592000 \(got 60\)/);
  assert.throws(() => loadConfig({ ...base, BATCHKEEPER_RETENTION_DAYS: 'a week' }, ['worker']), /BATCHKEEPER_RETENTION_DAYS/);
  assert.throws(() => loadConfig({ ...base, BATCHKEEPER_PRICES: '{"models":{"openai":{"m":{"inputPerMTokUsd":1,"outputPerMTokUsd":2,"cachedPerMTok":1}}}}' }, ['worker']), /BATCHKEEPER_PRICES/);
  assert.throws(() => new OpenAIBatchProvider({ apiKey: 'k', fileExpirySeconds: 10 }), /fileExpirySeconds must be 0 or a whole number from 3600 to 2592000/);
});

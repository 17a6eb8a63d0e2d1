/** The fake provider itself: auth, wire shapes, pagination, the state machine and the /_control surface. */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile } from 'openai';
import { setReplyPadding } from '../testing/fake-provider/replies';
import { startFakeProvider, type FakeProvider } from '../testing/fake-provider/server';
import { API_KEY, collect, ids, makeProvider, requestsFor, sleep, waitForTerminal } from './providers-support';

let fake: FakeProvider;

before(async () => {
  fake = await startFakeProvider({ processingMs: 150, seed: 7 });
});
after(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

async function control(path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${fake.url}/_control/${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return response.json();
}

describe('auth', () => {
  test('any key is accepted, a missing key gets a provider-shaped 401', async () => {
    const openai = await fetch(`${fake.openaiBaseUrl}/batches`);
    assert.equal(openai.status, 401);
    assert.equal(((await openai.json()) as any).error.type, 'invalid_request_error');
    const anthropic = await fetch(`${fake.url}/v1/messages/batches`);
    assert.equal(anthropic.status, 401);
    assert.deepEqual(((await anthropic.json()) as any).error.type, 'authentication_error');
    const ok = await fetch(`${fake.url}/v1/messages/batches`, { headers: { 'x-api-key': 'anything' } });
    assert.equal(ok.status, 200);
  });
});

describe('OpenAI surface', () => {
  const client = () => new OpenAI({ apiKey: API_KEY, baseURL: fake.openaiBaseUrl, maxRetries: 0 });

  test('statuses move validating → in_progress → finalizing → completed', async () => {
    fake.configure({ processingMs: 600 });
    const provider = makeProvider(fake, 'openai');
    const { providerBatchId } = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(ids('s', 10)) });
    const seen = new Set<string>();
    for (;;) {
      const report = await provider.getStatus(providerBatchId);
      seen.add(report.rawStatus);
      if (report.status === 'ended') break;
      await sleep(15);
    }
    assert.deepEqual([...seen], ['validating', 'in_progress', 'finalizing', 'completed']);
  });

  test('uploaded file metadata and content round-trip; results files exist only when they have lines', async () => {
    const jsonl = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}\n';
    const file = await client().files.create({ file: await toFile(Buffer.from(jsonl), 'in.jsonl'), purpose: 'batch' });
    assert.equal((await client().files.retrieve(file.id)).bytes, jsonl.length);
    assert.equal(await (await client().files.content(file.id)).text(), jsonl);
    const batch = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    fake.completeNow(batch.id);
    const done = await client().batches.retrieve(batch.id);
    assert.equal(done.status, 'completed');
    assert.ok(done.output_file_id);
    assert.equal(done.error_file_id, null);
    assert.equal(done.request_counts?.completed, 1);
  });

  test('a malformed input file fails the batch at validation with line numbers', async () => {
    const jsonl = '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n{oops\n';
    const file = await client().files.create({ file: await toFile(Buffer.from(jsonl), 'in.jsonl'), purpose: 'batch' });
    const batch = await client().batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await sleep(50);
    const failed = await client().batches.retrieve(batch.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.errors?.data?.[0]?.line, 2);
  });

  test('list pages newest first with after/has_more', async () => {
    const provider = makeProvider(fake, 'openai');
    const created = [];
    for (let i = 0; i < 5; i++) created.push((await provider.submit({ batchId: `bk-${i}`, model: 'm', requests: requestsFor(['a']) })).providerBatchId);
    const first = await client().batches.list({ limit: 2 });
    assert.deepEqual(first.data.map((b) => b.id), [created[4], created[3]]);
    assert.equal(first.has_more, true);
    const all = [];
    for await (const batch of client().batches.list({ limit: 2 })) all.push(batch.id);
    assert.deepEqual(all, [...created].reverse());
  });
});

describe('Anthropic surface', () => {
  test('results_url is absolute, built from the Host the client used', async () => {
    const provider = makeProvider(fake, 'anthropic');
    const { providerBatchId } = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['a']) });
    fake.completeNow(providerBatchId);
    const client = new Anthropic({ apiKey: API_KEY, baseURL: fake.anthropicBaseUrl, maxRetries: 0 });
    const batch = await client.messages.batches.retrieve(providerBatchId);
    assert.equal(batch.results_url, `${fake.url}/v1/messages/batches/${providerBatchId}/results`);
    // The SDK's own results() helper parses our file too.
    const results = [];
    for await (const line of await client.messages.batches.results(providerBatchId)) results.push(line);
    assert.equal(results[0]?.result.type, 'succeeded');
  });

  test('list pages newest first with after_id and before_id', async () => {
    const provider = makeProvider(fake, 'anthropic');
    const created = [];
    for (let i = 0; i < 5; i++) created.push((await provider.submit({ batchId: `bk-${i}`, model: 'm', requests: requestsFor(['a']) })).providerBatchId);
    const client = new Anthropic({ apiKey: API_KEY, baseURL: fake.anthropicBaseUrl, maxRetries: 0 });
    const all = [];
    for await (const batch of client.messages.batches.list({ limit: 2 })) all.push(batch.id);
    assert.deepEqual(all, [...created].reverse());
    const newer = await client.messages.batches.list({ before_id: created[1], limit: 2 });
    assert.deepEqual(newer.data.map((b) => b.id), [created[3], created[2]]);
    assert.equal(newer.has_more, true);
  });

  test('create validates custom ids like the real API', async () => {
    const response = await fetch(`${fake.url}/v1/messages/batches`, {
      method: 'POST',
      headers: { 'x-api-key': 'k', 'content-type': 'application/json' },
      body: JSON.stringify({ requests: [{ custom_id: 'bad id!', params: {} }] }),
    });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as any).error.type, 'invalid_request_error');
  });
});

describe('outcomes, counters and the created-batch log', () => {
  test('an outcome with times applies to that many batches only', async () => {
    const provider = makeProvider(fake, 'anthropic');
    fake.setOutcomes({ flaky: { outcome: 'errored', times: 1 } });
    const kinds = [];
    for (let i = 0; i < 2; i++) {
      const { providerBatchId } = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['flaky']) });
      await waitForTerminal(provider, providerBatchId);
      kinds.push((await collect(provider.streamResults(providerBatchId)))[0]?.kind);
    }
    assert.deepEqual(kinds, ['errored', 'succeeded']);
  });

  test('fingerprints identify the same logical batch; counters count calls', async () => {
    // Long enough that the batch is still in progress at the cancel (a finished batch refuses it, and the adapter
    // then reads its status: one retrieve more) however slow the machine is.
    fake.configure({ processingMs: 60_000 });
    const provider = makeProvider(fake, 'openai');
    const a = await provider.submit({ batchId: 'bk-1', model: 'm', requests: requestsFor(['x', 'y']) });
    await provider.submit({ batchId: 'bk-1', model: 'm', requests: requestsFor(['y', 'x']) });
    await provider.submit({ batchId: 'bk-2', model: 'm', requests: requestsFor(['x', 'z']) });
    const prints = fake.createdBatches().map((batch) => batch.fingerprint);
    assert.equal(prints[0], prints[1]);
    assert.notEqual(prints[0], prints[2]);
    await provider.getStatus(a.providerBatchId);
    await provider.getStatus(a.providerBatchId);
    await provider.cancel(a.providerBatchId);
    assert.deepEqual(fake.counters(a.providerBatchId), { create: 1, retrieve: 2, cancel: 1, results: 0 });
    assert.equal(fake.counters('batch_unknown'), undefined);
  });

  test('rate faults are reproducible from the seed', async () => {
    const provider = makeProvider(fake, 'openai');
    const { providerBatchId } = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['a']) });
    const run = async () => {
      fake.setFaultRates({ seed: 42, rules: [{ route: 'openai.batches.retrieve', rate: 0.3, status: 500 }] });
      const outcomes = [];
      for (let i = 0; i < 40; i++) outcomes.push(await provider.getStatus(providerBatchId).then(() => 'ok', () => 'fail'));
      return outcomes.join(',');
    };
    const first = await run();
    assert.equal(await run(), first);
    const failures = first.split(',').filter((o) => o === 'fail').length;
    assert.ok(failures > 3 && failures < 25, `failures ${failures}`);
    fake.clearFaults();
    await provider.getStatus(providerBatchId);
  });

  test('keepResultFiles serves an ended batch\'s results as first rendered; off, each download renders anew', async () => {
    const provider = makeProvider(fake, 'anthropic');
    const download = async (providerBatchId: string) => {
      const response = await fetch(`${fake.anthropicBaseUrl}/v1/messages/batches/${providerBatchId}/results`, {
        headers: { 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' },
      });
      assert.equal(response.status, 200);
      return response.text();
    };
    const kept = async (keepResultFiles: boolean) => {
      fake.configure({ keepResultFiles });
      const { providerBatchId } = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(ids('k', 20)) });
      await waitForTerminal(provider, providerBatchId);
      try {
        const first = await download(providerBatchId);
        setReplyPadding(40); // changes every reply the fake renders from now on
        const second = await download(providerBatchId);
        assert.equal(first.trim().split('\n').length, 20);
        return first === second;
      } finally {
        setReplyPadding(0);
      }
    };
    assert.equal(await kept(true), true);
    assert.equal(await kept(false), false);
    const bad = await fetch(`${fake.url}/_control/configure`, { method: 'POST', body: JSON.stringify({ keepResultFiles: 'yes' }) });
    assert.equal(bad.status, 400);
  });

  test('latency faults delay, batch-scoped faults only hit their batch', async () => {
    const provider = makeProvider(fake, 'anthropic');
    const a = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['a']) });
    const b = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['b']) });
    fake.injectFault([
      { route: 'anthropic.*', kind: 'latency', latencyMs: 120 },
      { route: 'anthropic.batches.retrieve', status: 500, batchId: b.providerBatchId },
    ]);
    const started = Date.now();
    await provider.getStatus(a.providerBatchId);
    assert.ok(Date.now() - started >= 100);
    await provider.getStatus(a.providerBatchId);
    await assert.rejects(provider.getStatus(b.providerBatchId));
  });
});

describe('/_control over HTTP', () => {
  test('configure, outcomes, faults, batch control, state and reset', async () => {
    await control('configure', { processingMs: 10_000 });
    await control('outcomes', { outcomes: { 'c-bad': 'invalid' } });
    const provider = makeProvider(fake, 'openai');
    const { providerBatchId } = await provider.submit({ batchId: 'bk-ctl', model: 'm', requests: requestsFor(['c-ok', 'c-bad']) });
    assert.equal((await provider.getStatus(providerBatchId)).status, 'in_progress');

    await control(`batches/${providerBatchId}`, { complete: true });
    assert.equal((await provider.getStatus(providerBatchId)).status, 'ended');
    const kinds = (await collect(provider.streamResults(providerBatchId))).map((line) => `${line.customId}:${line.kind}`).sort();
    assert.deepEqual(kinds, ['c-bad:errored', 'c-ok:succeeded']);

    await control('faults', { inject: { route: 'openai.batches.retrieve', status: 503 } });
    await assert.rejects(provider.getStatus(providerBatchId));

    const state = await control('state');
    assert.equal(state.config.processingMs, 10_000);
    assert.equal(state.batches.length, 1);
    assert.equal(state.batches[0].metadata.batchkeeper_batch_id, 'bk-ctl');
    assert.equal(state.batches[0].counters.retrieve, 4);
    assert.equal(state.routeCounts['openai.batches.create'], 1);
    assert.equal((await control(`batches/${providerBatchId}`)).phase, 'completed');

    await control('reset', {});
    const cleared = await control('state');
    assert.equal(cleared.batches.length, 0);
    assert.equal(cleared.config.processingMs, 150);
  });

  test('bad control input is a 400', async () => {
    const response = await fetch(`${fake.url}/_control/outcomes`, { method: 'POST', body: JSON.stringify({ outcomes: { a: 'exploded' } }) });
    assert.equal(response.status, 400);
  });
});

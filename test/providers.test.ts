/**
 * Both provider adapters, through the official SDKs, against the fake provider server: lifecycle, per-request
 * outcomes, cancel, expiry and error classification. No mocks.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startFakeProvider, type FakeProvider } from '../testing/fake-provider/server';
import { ProviderError } from '../providers/errors';
import { OpenAIBatchProvider } from '../providers/openai';
import {
  API_KEY,
  PROVIDER_NAMES,
  byCustomId,
  collect,
  ids,
  makeProvider,
  providerError,
  requestsFor,
  resultText,
  seenErrors,
  sleep,
  waitForTerminal,
} from './providers-support';

let fake: FakeProvider;

before(async () => {
  fake = await startFakeProvider({ processingMs: 150 });
});
after(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

for (const name of PROVIDER_NAMES) {
  describe(`${name} adapter`, () => {
    test('submit → in_progress → ended, results joined by custom id whatever their order', async () => {
      const provider = makeProvider(fake, name);
      const customIds = ids('life', 30);
      const submitted = await provider.submit({ batchId: 'bk-life', model: 'test-model', requests: requestsFor(customIds) });
      assert.equal(submitted.report.status, 'in_progress');
      assert.equal(submitted.report.resultsAvailable, false);
      assert.equal(submitted.report.counts.total, 30);

      const report = await waitForTerminal(provider, submitted.providerBatchId);
      assert.equal(report.status, 'ended');
      assert.equal(report.resultsAvailable, true);
      assert.equal(report.counts.succeeded, 30);

      const lines = await collect(provider.streamResults(submitted.providerBatchId));
      assert.equal(lines.length, 30);
      const joined = byCustomId(lines);
      for (const id of customIds) {
        const line = joined.get(id);
        assert.ok(line, `missing result for ${id}`);
        assert.equal(resultText(line), `Fake reply to ${id}.`);
        assert.ok(line.kind === 'succeeded' && line.usage && line.usage.inputTokens > 0 && line.usage.outputTokens > 0);
      }
      const order = lines.map((line) => line.customId);
      assert.notDeepEqual(order, customIds, 'the fake shuffles result order');
    });

    test('per-request errored / invalid / expired / missing / malformed outcomes', async () => {
      const provider = makeProvider(fake, name);
      fake.setOutcomes({ 'o-err': 'errored', 'o-inv': 'invalid', 'o-exp': 'expired', 'o-miss': 'missing', 'o-bad': 'malformed' });
      const customIds = ['o-ok1', 'o-err', 'o-inv', 'o-exp', 'o-miss', 'o-bad', 'o-ok2'];
      const { providerBatchId } = await provider.submit({ batchId: 'bk-out', model: 'm', requests: requestsFor(customIds) });
      await waitForTerminal(provider, providerBatchId);
      const lines = await collect(provider.streamResults(providerBatchId));
      const joined = byCustomId(lines);

      assert.equal(lines.length, 6, 'the missing request has no line at all');
      assert.ok(!joined.has('o-miss'));
      assert.equal(joined.get('o-ok1')?.kind, 'succeeded');
      assert.equal(joined.get('o-ok2')?.kind, 'succeeded');
      assert.deepEqual(pick(joined.get('o-err')), { kind: 'errored', retryable: true });
      assert.deepEqual(pick(joined.get('o-inv')), { kind: 'errored', retryable: false });
      assert.deepEqual(pick(joined.get('o-exp')), { kind: 'expired', retryable: true });
      const malformed = joined.get('o-bad');
      assert.equal(malformed?.kind, 'malformed');
      assert.ok(malformed.kind === 'malformed' && malformed.lineNumber >= 1 && malformed.errorMessage);
    });

    test('cancel keeps processed results and cancels the rest', async () => {
      const provider = makeProvider(fake, name);
      fake.configure({ processingMs: 1_000, cancelDelayMs: 30 });
      const customIds = ids('cancel', 40);
      const { providerBatchId } = await provider.submit({ batchId: 'bk-cancel', model: 'm', requests: requestsFor(customIds) });
      await sleep(500);
      const afterCancel = await provider.cancel(providerBatchId);
      assert.equal(afterCancel.status, 'in_progress');
      assert.match(afterCancel.rawStatus, /^cancel/);

      const report = await waitForTerminal(provider, providerBatchId);
      assert.equal(report.status, name === 'openai' ? 'canceled' : 'ended');
      const lines = await collect(provider.streamResults(providerBatchId));
      const kinds = countKinds(lines);
      assert.ok((kinds.succeeded ?? 0) > 0, 'some requests were processed before the cancel');
      assert.ok((kinds.canceled ?? 0) > 0, 'the rest are canceled');
      assert.equal((kinds.succeeded ?? 0) + (kinds.canceled ?? 0), 40);
      assert.ok(lines.every((line) => line.kind !== 'canceled' || line.retryable));
      assert.equal(report.counts.canceled, kinds.canceled);

      // Cancelling again after the end is not an error: it reports the final state.
      assert.equal((await provider.cancel(providerBatchId)).status, report.status);
    });

    test('expiry yields partial results plus expired requests', async () => {
      const provider = makeProvider(fake, name);
      fake.configure({ batchRules: [{ match: { customId: 'exp-0' }, processingMs: 1_000, expireAfterMs: 500 }] });
      const { providerBatchId } = await provider.submit({ batchId: 'bk-exp', model: 'm', requests: requestsFor(ids('exp', 20)) });
      const report = await waitForTerminal(provider, providerBatchId);
      assert.equal(report.status, name === 'openai' ? 'expired' : 'ended');
      const kinds = countKinds(await collect(provider.streamResults(providerBatchId)));
      assert.ok((kinds.succeeded ?? 0) > 0 && (kinds.expired ?? 0) > 0, JSON.stringify(kinds));
      assert.equal((kinds.succeeded ?? 0) + (kinds.expired ?? 0), 20);
    });

    test('503 with retry-after becomes a retryable ProviderError with retryAfterMs', async () => {
      const provider = makeProvider(fake, name, { maxRetries: 0 });
      const { providerBatchId } = await provider.submit({ batchId: 'bk-503', model: 'm', requests: requestsFor(['a']) });
      fake.injectFault({ route: `${name}.batches.retrieve`, status: 503, retryAfterSeconds: 7 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.equal(err.details.httpStatus, 503);
      assert.equal(err.details.retryable, true);
      assert.equal(err.details.retryAfterMs, 7_000);
      assert.match(err.message, new RegExp(`^${name} getStatus ${providerBatchId}: HTTP 503`));
    });

    test('the SDK retries reads on its own; counters see every retrieve call', async () => {
      const provider = makeProvider(fake, name, { maxRetries: 2 });
      const { providerBatchId } = await provider.submit({ batchId: 'bk-retry', model: 'm', requests: requestsFor(['a']) });
      fake.injectFault({ route: `${name}.batches.retrieve`, status: 500, retryAfterMs: 1, count: 2 });
      const report = await provider.getStatus(providerBatchId);
      assert.ok(report.status === 'in_progress' || report.status === 'ended');
      assert.equal(fake.counters(providerBatchId)?.retrieve, 3);

      // More faults than the SDK retries: the error surfaces, still retryable.
      fake.injectFault({ route: `${name}.batches.retrieve`, status: 429, retryAfterMs: 1, count: 3 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.equal(err.details.code, 'rate_limited');
      assert.equal(err.details.retryable, true);
      assert.equal(fake.counters(providerBatchId)?.retrieve, 6);
    });

    test('the SDK never retries a create', async () => {
      const provider = makeProvider(fake, name, { maxRetries: 2 });
      fake.injectFault({ route: `${name}.batches.create`, status: 500, retryAfterMs: 1 });
      const err = await providerError(provider.submit({ batchId: 'bk-noretry', model: 'm', requests: requestsFor(['a']) }));
      assert.equal(err.details.retryable, true);
      assert.equal(fake.routeCounts()[`${name}.batches.create`], 1);
      assert.equal(fake.createdBatches().length, 0);
    });

    test('unknown batch id → non-retryable 404', async () => {
      const provider = makeProvider(fake, name);
      const err = await providerError(provider.getStatus(name === 'openai' ? 'batch_nope' : 'msgbatch_nope'));
      assert.equal(err.details.httpStatus, 404);
      assert.equal(err.details.code, 'not_found');
      assert.equal(err.details.retryable, false);
    });

    test('an HTML error page becomes a clear retryable bad_response', async () => {
      const provider = makeProvider(fake, name);
      const { providerBatchId } = await provider.submit({ batchId: 'bk-html', model: 'm', requests: requestsFor(['a']) });
      fake.injectFault({ route: `${name}.batches.retrieve`, kind: 'html', status: 502 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.equal(err.details.code, 'bad_response');
      assert.equal(err.details.httpStatus, 502);
      assert.equal(err.details.retryable, true);
      assert.match(err.message, /non-JSON body, text\/html/);
      assert.ok(!err.message.includes('<html'), 'no body in the message');
    });

    test('an HTML page with 200 where JSON was expected is a bad_response too', async () => {
      const provider = makeProvider(fake, name);
      const { providerBatchId } = await provider.submit({ batchId: 'bk-html200', model: 'm', requests: requestsFor(['a']) });
      fake.injectFault({ route: `${name}.batches.retrieve`, kind: 'html', status: 200 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.equal(err.details.code, 'bad_response');
      assert.equal(err.details.retryable, true);
    });

    test('connection reset → retryable connection_error, and nothing is created', async () => {
      const provider = makeProvider(fake, name);
      fake.injectFault({ route: `${name}.batches.create`, kind: 'reset' });
      const err = await providerError(provider.submit({ batchId: 'bk-reset', model: 'm', requests: requestsFor(['a']) }));
      assert.equal(err.details.code, 'connection_error');
      assert.equal(err.details.retryable, true);
      assert.equal(fake.createdBatches().length, 0);
    });

    test('a connection lost mid-download fails the stream with connection_error', async () => {
      const provider = makeProvider(fake, name);
      const { providerBatchId } = await provider.submit({ batchId: 'bk-trunc', model: 'm', requests: requestsFor(ids('t', 3_000)) });
      await waitForTerminal(provider, providerBatchId);
      fake.injectFault({ route: name === 'openai' ? 'openai.files.content' : 'anthropic.batches.results', kind: 'truncate', afterLines: 10 });
      let received = 0;
      const err = await providerError(
        (async () => {
          for await (const block of provider.streamResults(providerBatchId)) received += block.length;
        })(),
      );
      assert.equal(err.details.code, 'connection_error');
      assert.ok(received >= 10 && received < 3_000, `received ${received}`);
    });

    test('the API key never appears in error messages, even when the provider echoes it', async () => {
      const provider = makeProvider(fake, name);
      const body =
        name === 'openai'
          ? { error: { message: `Incorrect API key provided: ${API_KEY}.`, type: 'invalid_request_error', code: 'invalid_api_key' } }
          : { type: 'error', error: { type: 'authentication_error', message: `invalid x-api-key ${API_KEY}` } };
      fake.injectFault({ route: `${name}.batches.retrieve`, status: 401, body });
      const err = await providerError(provider.getStatus('batch_x'));
      assert.equal(err.details.code, 'unauthorized');
      assert.equal(err.details.retryable, false);
      assert.match(err.message, /\[redacted\]/);
    });

    test('results of a running batch are not available yet (retryable)', async () => {
      const provider = makeProvider(fake, name);
      fake.configure({ processingMs: 5_000 });
      const { providerBatchId } = await provider.submit({ batchId: 'bk-early', model: 'm', requests: requestsFor(['a']) });
      const err = await providerError(collect(provider.streamResults(providerBatchId)));
      assert.equal(err.details.code, 'results_not_available');
      assert.equal(err.details.retryable, true);
    });

    test('duplicate custom ids are rejected before anything is sent', async () => {
      const provider = makeProvider(fake, name);
      const err = await providerError(provider.submit({ batchId: 'bk-dup', model: 'm', requests: requestsFor(['a', 'b', 'a']) }));
      assert.equal(err.details.code, 'duplicate_custom_id');
      assert.equal(err.details.retryable, false);
      assert.deepEqual(fake.routeCounts(), {});
    });
  });
}

describe('openai specifics', () => {
  test('provider-side failed batch reports failure and has no results', async () => {
    const provider = makeProvider(fake, 'openai');
    fake.configure({ batchRules: [{ match: { customId: 'fail-0' }, outcome: 'failed' }] });
    const { providerBatchId } = await provider.submit({ batchId: 'bk-fail', model: 'm', requests: requestsFor(ids('fail', 3)) });
    const report = await waitForTerminal(provider, providerBatchId);
    assert.equal(report.status, 'failed');
    assert.deepEqual(report.failure?.code, 'invalid_request');
    assert.ok(report.failure?.message);
    assert.deepEqual(await collect(provider.streamResults(providerBatchId)), []);
  });

  test('findExisting finds the batch whose create response was lost', async () => {
    const provider = makeProvider(fake, 'openai');
    await provider.submit({ batchId: 'bk-other', model: 'm', requests: requestsFor(['x']) });
    fake.injectFault({ route: 'openai.batches.create', kind: 'drop_response' });
    const err = await providerError(provider.submit({ batchId: 'bk-lost', model: 'm', requests: requestsFor(['a', 'b']) }));
    assert.equal(err.details.code, 'connection_error');
    assert.equal(fake.createdBatches().length, 2, 'the batch was created even though the response was lost');

    const found = await provider.findExisting('bk-lost');
    assert.ok(found);
    const created = fake.createdBatches().find((batch) => batch.batchkeeperBatchId === 'bk-lost');
    assert.equal(found.providerBatchId, created?.id);
    assert.equal(found.report.counts.total, 2);
    assert.equal(await provider.findExisting('bk-never'), null);
  });

  test('findExisting pages through the list and returns the newest match', async () => {
    const provider = makeProvider(fake, 'openai');
    const first = await provider.submit({ batchId: 'bk-dupe', model: 'm', requests: requestsFor(['a']) });
    for (let i = 0; i < 120; i++) await provider.submit({ batchId: `bk-filler-${i}`, model: 'm', requests: requestsFor(['a']) });
    assert.equal((await provider.findExisting('bk-dupe'))?.providerBatchId, first.providerBatchId);
    assert.equal(fake.routeCounts()['openai.batches.list'], 2, 'second page needed');
    const second = await provider.submit({ batchId: 'bk-dupe', model: 'm', requests: requestsFor(['a']) });
    assert.equal((await provider.findExisting('bk-dupe'))?.providerBatchId, second.providerBatchId);
  });

  test('a configured endpoint is used for the batch and every line (the fake fails mismatches)', async () => {
    const provider = new OpenAIBatchProvider({ apiKey: API_KEY, baseURL: fake.openaiBaseUrl, maxRetries: 0, endpoint: '/v1/embeddings' });
    const { providerBatchId } = await provider.submit({ batchId: 'bk-emb', model: 'm', requests: requestsFor(['a']) });
    assert.equal((await waitForTerminal(provider, providerBatchId)).status, 'ended');
  });
});

describe('anthropic specifics', () => {
  test('findExisting is always null (no metadata to match on)', async () => {
    const provider = makeProvider(fake, 'anthropic');
    await provider.submit({ batchId: 'bk-a', model: 'm', requests: requestsFor(['a']) });
    assert.equal(await provider.findExisting('bk-a'), null);
  });

  test('invalid custom ids are rejected locally', async () => {
    const provider = makeProvider(fake, 'anthropic');
    const err = await providerError(provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['has space']) }));
    assert.equal(err.details.code, 'invalid_custom_id');
    assert.equal(err.details.retryable, false);
  });

  test('529 overloaded is retryable', async () => {
    const provider = makeProvider(fake, 'anthropic');
    fake.injectFault({ route: 'anthropic.batches.create', status: 529 });
    const err = await providerError(provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['a']) }));
    assert.equal(err.details.code, 'overloaded');
    assert.equal(err.details.retryable, true);
  });

  test('simulated batch failure: ended with every request errored (retryable)', async () => {
    const provider = makeProvider(fake, 'anthropic');
    fake.configure({ batchRules: [{ match: { provider: 'anthropic' }, outcome: 'failed', times: 1 }] });
    const { providerBatchId } = await provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(ids('f', 4)) });
    const report = await waitForTerminal(provider, providerBatchId);
    assert.equal(report.status, 'ended');
    assert.equal(report.counts.errored, 4);
    const lines = await collect(provider.streamResults(providerBatchId));
    assert.deepEqual(countKinds(lines), { errored: 4 });
    assert.ok(lines.every((line) => line.kind === 'errored' && line.retryable && line.errorCode === 'api_error'));
  });

  test('a rejected create is a non-retryable 400', async () => {
    const provider = makeProvider(fake, 'anthropic');
    fake.configure({ batchRules: [{ outcome: 'rejected' }] });
    const err = await providerError(provider.submit({ batchId: 'bk', model: 'm', requests: requestsFor(['a']) }));
    assert.equal(err.details.httpStatus, 400);
    assert.equal(err.details.code, 'bad_request');
    assert.equal(err.details.retryable, false);
  });
});

test('no ProviderError seen in this file mentions the API key', () => {
  assert.ok(seenErrors.length > 20);
  for (const err of seenErrors) {
    assert.ok(err instanceof ProviderError);
    assert.ok(!err.message.includes(API_KEY));
    assert.ok(!JSON.stringify(err.details).includes(API_KEY));
  }
});

function pick(line: unknown): { kind: string; retryable?: boolean } | undefined {
  if (!line) return undefined;
  const { kind, retryable } = line as { kind: string; retryable?: boolean };
  return { kind, retryable };
}

function countKinds(lines: readonly { kind: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) counts[line.kind] = (counts[line.kind] ?? 0) + 1;
  return counts;
}

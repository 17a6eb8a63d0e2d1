/** Unit tests for the adapters' building blocks: JSONL splitting, line parsing, error classification, registry. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as OpenAISdk from 'openai';
import * as AnthropicSdk from '@anthropic-ai/sdk';
import { classifyError, parseRetryAfter } from '../providers/classify-error';
import { ProviderError } from '../providers/errors';
import { splitJsonlLines } from '../providers/jsonl';
import { normaliseStatus } from '../providers/normalise';
import { loadConfig } from '../config/load';
import { createProviders } from '../providers/registry';
import { parseResultLines, recoverCustomId } from '../providers/result-lines';

const ctx = { provider: 'openai', operation: 'getStatus', target: 'batch_1', secrets: ['sk-secret-123456'] };

async function lines(chunks: (string | Uint8Array)[]) {
  const out: { line: string; lineNumber: number }[] = [];
  for await (const block of splitJsonlLines((async function* () { yield* chunks; })())) out.push(...block);
  return out;
}

describe('splitJsonlLines', () => {
  test('joins lines across chunks, handles CRLF, skips blank lines but counts them', async () => {
    assert.deepEqual(await lines(['{"a":', '1}\r\n\n  \n{"b"', ':2}']), [
      { line: '{"a":1}', lineNumber: 1 },
      { line: '{"b":2}', lineNumber: 4 },
    ]);
  });

  test('decodes multi-byte characters split between chunks', async () => {
    const bytes = new TextEncoder().encode('"héllo €"\n');
    const split = [bytes.subarray(0, 3), bytes.subarray(3, 10), bytes.subarray(10)];
    assert.deepEqual(await lines(split), [{ line: '"héllo €"', lineNumber: 1 }]);
  });

  test('reads a web ReadableStream and cancels it when the consumer stops early', async () => {
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode('{"x":1}\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const block of splitJsonlLines(stream)) if (block.some(({ lineNumber }) => lineNumber === 3)) break;
    assert.equal(cancelled, true);
  });
});

describe('parseResultLines', () => {
  test('bad lines become malformed without stopping the stream', async () => {
    const source = (async function* () {
      yield '{"custom_id":"a","ok":1}\n{"custom_id":"b", broken\nnot json at all\n{"no_id":1}\n{"custom_id":"c","ok":1}\n';
    })();
    const out = [];
    for await (const block of parseResultLines(source, (_r, customId) => ({ kind: 'succeeded', customId, result: null }))) out.push(...block);
    assert.deepEqual(out, [
      { kind: 'succeeded', customId: 'a', result: null },
      { kind: 'malformed', customId: 'b', lineNumber: 2, errorMessage: 'line is not valid JSON' },
      { kind: 'malformed', lineNumber: 3, errorMessage: 'line is not valid JSON' },
      { kind: 'malformed', lineNumber: 4, errorMessage: 'line has no custom_id' },
      { kind: 'succeeded', customId: 'c', result: null },
    ]);
  });

  test('recoverCustomId unescapes and tolerates spacing', () => {
    assert.equal(recoverCustomId('{"custom_id" : "a\\"b", "x'), 'a"b');
    assert.equal(recoverCustomId('{"id":"x"'), undefined);
  });
});

describe('classifyError', () => {
  const headers = (init: Record<string, string>) => new Headers(init);

  test('HTTP errors: code, status, retryability, retry-after', () => {
    const err = classifyError(
      OpenAISdk.APIError.generate(429, { error: { message: 'slow down', type: 'requests' } }, undefined, headers({ 'content-type': 'application/json', 'retry-after-ms': '1500' })),
      ctx,
    );
    assert.deepEqual(err.details, { provider: 'openai', code: 'rate_limited', httpStatus: 429, retryable: true, retryAfterMs: 1500 });
    assert.equal(err.message, 'openai getStatus batch_1: HTTP 429 rate_limited - slow down');

    for (const status of [400, 401, 403, 404, 413, 422]) {
      const e = classifyError(OpenAISdk.APIError.generate(status, undefined, undefined, headers({ 'content-type': 'application/json' })), ctx);
      assert.equal(e.details.retryable, false, `HTTP ${status}`);
    }
    for (const status of [408, 409, 500, 502, 503, 504, 529]) {
      const e = classifyError(AnthropicSdk.APIError.generate(status, undefined, undefined, headers({ 'content-type': 'application/json' })), ctx);
      assert.equal(e.details.retryable, true, `HTTP ${status}`);
    }
  });

  test('quota 429s are not retryable', () => {
    const openai = classifyError(
      OpenAISdk.APIError.generate(429, { error: { code: 'insufficient_quota', message: 'pay up' } }, undefined, headers({ 'content-type': 'application/json' })),
      ctx,
    );
    assert.equal(openai.details.code, 'quota_exceeded');
    assert.equal(openai.details.retryable, false);
    const anthropic = classifyError(
      AnthropicSdk.APIError.generate(
        429,
        { type: 'error', error: { type: 'rate_limit_error', message: 'limit', details: { error_code: 'enforced_spend_limit_reached' } } },
        undefined,
        headers({ 'content-type': 'application/json' }),
      ),
      { ...ctx, provider: 'anthropic' },
    );
    assert.equal(anthropic.details.code, 'quota_exceeded');
  });

  test('network failures are retryable connection errors', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    for (const err of [
      new TypeError('fetch failed', { cause: reset }),
      new OpenAISdk.APIConnectionError({ cause: reset }),
      new AnthropicSdk.APIConnectionTimeoutError(),
      new Error('socket hang up'),
    ]) {
      const classified = classifyError(err, ctx);
      assert.equal(classified.details.code, 'connection_error', String(err));
      assert.equal(classified.details.retryable, true);
    }
  });

  test('scrubs the key and key-shaped strings from echoed messages', () => {
    const err = classifyError(
      OpenAISdk.APIError.generate(401, { error: { message: 'Incorrect API key provided: sk-secret-123456 / sk-abc*****xyz' } }, undefined, headers({ 'content-type': 'application/json' })),
      ctx,
    );
    assert.ok(!err.message.includes('sk-secret'));
    assert.ok(!err.message.includes('*****'));
  });

  test('ProviderErrors pass through; unknown errors are wrapped as retryable', () => {
    const original = new ProviderError('x', { provider: 'openai', code: 'c', retryable: false });
    assert.equal(classifyError(original, ctx), original);
    const wrapped = classifyError(new RangeError('boom'), ctx);
    assert.equal(wrapped.details.code, 'unexpected_error');
    assert.equal(wrapped.details.retryable, true);
    assert.equal(classifyError(new SyntaxError('Unexpected token <'), ctx).details.code, 'bad_response');
  });

  test('parseRetryAfter reads ms, seconds and HTTP dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': '3' }), now), 3000);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:10 GMT' }), now), 10_000);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after-ms': '250', 'retry-after': '3' }), now), 250);
    assert.equal(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now), undefined);
    assert.equal(parseRetryAfter(new Headers({}), now), undefined);
  });
});

test('statuses match case-insensitively; unknown ones keep the batch in progress', () => {
  const table = { completed: 'ended', cancelled: 'canceled' } as const;
  assert.equal(normaliseStatus('COMPLETED', table), 'ended');
  assert.equal(normaliseStatus('Cancelled', table), 'canceled');
  assert.equal(normaliseStatus('queued_somewhere', table), 'in_progress');
});

describe('registry', () => {
  test('the provider settings configure only providers with a key', () => {
    const { limits: _none, ...none } = loadConfig({}, ['providers']).providers;
    assert.deepEqual(none, {});
    const { limits: _some, ...some } = loadConfig({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: 'http://x/v1', ANTHROPIC_API_KEY: '' }, ['providers']).providers;
    assert.deepEqual(some, { openai: { apiKey: 'k', baseURL: 'http://x/v1' } });
  });

  test('createProviders registers adapters by name', () => {
    const providers = createProviders({ openai: { apiKey: 'a' }, anthropic: { apiKey: 'b', baseURL: 'http://127.0.0.1:1' } });
    assert.deepEqual([...providers.keys()].sort(), ['anthropic', 'openai']);
    assert.equal(createProviders({}).size, 0);
  });
});

/**
 * The Gemini adapter through `@google/genai` against the fake provider: the shared contract for inline requests and
 * for JSONL file input, then Gemini's own rules (join keys, state names, RetryInfo, batch names).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GeminiBatchProvider } from '../providers/gemini';
import type { ProviderRequest, ProviderResultLine } from '../providers/types';
import { providerContract, useFakeProvider } from './providers-contract';
import { API_KEY, byCustomId, collect, ids, providerError, seenErrors, waitForTerminal } from './providers-support';

const fake = useFakeProvider();

function gemini(options: { maxRetries?: number; inlineLimitBytes?: number } = {}): GeminiBatchProvider {
  return new GeminiBatchProvider({ apiKey: API_KEY, baseURL: fake().geminiBaseUrl, timeoutMs: 5_000, ...options, maxRetries: options.maxRetries ?? 0 });
}

function geminiRequests(customIds: readonly string[]): ProviderRequest[] {
  return customIds.map((customId) => ({
    customId,
    params: {
      contents: [{ role: 'user', parts: [{ text: `Say something about ${customId}` }] }],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { maxOutputTokens: 32, temperature: 0 },
    },
  }));
}

function geminiText(line: ProviderResultLine): string {
  const result = (line as { result?: { candidates?: { content?: { parts?: { text?: string }[] } }[] } }).result;
  return result?.candidates?.[0]?.content?.parts?.[0]?.text ?? '';
}

const googleError = (status: number, message: string) => ({ error: { code: status, message, status: 'UNAUTHENTICATED' } });

for (const mode of ['inline', 'file'] as const) {
  providerContract(fake, {
    title: `gemini (${mode} input)`,
    routes: 'gemini',
    // A one-byte inline limit sends every batch through the Files API.
    make: (options) => gemini({ ...options, ...(mode === 'file' ? { inlineLimitBytes: 1 } : {}) }),
    requests: geminiRequests,
    text: geminiText,
    unknownId: 'batches/nope',
    errorBody: googleError,
    expiredKind: 'errored',
    canceledLines: false,
    expiredLines: false,
    ...(mode === 'file' ? { downloadRoute: 'gemini.files.download' } : {}),
  });
}

describe('gemini specifics', () => {
  test('small batches go inline (metadata.key), large ones as an uploaded JSONL file (key)', async () => {
    const small = await gemini().submit({ batchId: 'bk-small', model: 'gemini-2.5-flash', requests: geminiRequests(['a', 'b']) });
    assert.equal(fake().routeCounts()['gemini.files.upload'], undefined);
    const large = await gemini({ inlineLimitBytes: 2_000 }).submit({ batchId: 'bk-large', model: 'models/gemini-2.5-flash', requests: geminiRequests(ids('big', 40)) });
    assert.equal(fake().routeCounts()['gemini.files.upload'], 2, 'resumable upload: start + one finalizing chunk');
    for (const { providerBatchId, size } of [{ ...small, size: 2 }, { ...large, size: 40 }]) {
      assert.equal((await waitForTerminal(gemini(), providerBatchId)).status, 'ended');
      const lines = await collect(gemini().streamResults(providerBatchId));
      assert.equal(byCustomId(lines).size, size);
      assert.ok(lines.every((line) => line.kind === 'succeeded'));
    }
    assert.equal(fake().routeCounts()['gemini.files.download'], 1, 'only the file batch downloads a responses file');
    assert.deepEqual(fake().createdBatches().map((info) => info.model), ['gemini-2.5-flash', 'gemini-2.5-flash']);
  });

  test('per-request error codes keep the google.rpc status', async () => {
    fake().setOutcomes({ 'e-int': 'errored', 'e-arg': 'invalid', 'e-late': 'expired' });
    const { providerBatchId } = await gemini().submit({ batchId: 'bk-codes', model: 'm', requests: geminiRequests(['e-int', 'e-arg', 'e-late']) });
    await waitForTerminal(gemini(), providerBatchId);
    const joined = byCustomId(await collect(gemini().streamResults(providerBatchId)));
    const code = (id: string) => (joined.get(id) as { errorCode?: string } | undefined)?.errorCode;
    assert.deepEqual([code('e-int'), code('e-arg'), code('e-late')], ['INTERNAL', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED']);
  });

  test('state names match in any case (JOB_STATE_* and BATCH_STATE_*); unknown states are still running', async () => {
    const provider = gemini();
    const cases: [string, string][] = [
      ['BATCH_STATE_SUCCEEDED', 'ended'],
      ['batch_state_cancelled', 'canceled'],
      ['Job_State_Expired', 'expired'],
      ['JOB_STATE_PARTIALLY_SUCCEEDED', 'ended'],
      ['BATCH_STATE_WAITING_FOR_QUOTA', 'in_progress'],
    ];
    for (const [state, status] of cases) {
      fake().injectFault({ route: 'gemini.batches.retrieve', status: 200, body: { name: 'batches/x', metadata: { state } } });
      assert.equal((await provider.getStatus('batches/x')).status, status, state);
    }
    fake().injectFault({ route: 'gemini.batches.retrieve', status: 200, body: { name: 'batches/x', metadata: { state: 'BATCH_STATE_WAITING_FOR_QUOTA' } } });
    assert.equal((await provider.getStatus('batches/x')).rawStatus, 'BATCH_STATE_WAITING_FOR_QUOTA', 'the raw state is kept for operators');
  });

  test("Google's RetryInfo in the error body counts as retry-after", async () => {
    fake().injectFault({
      route: 'gemini.batches.retrieve',
      status: 429,
      body: { error: { code: 429, message: 'Quota exceeded.', status: 'RESOURCE_EXHAUSTED', details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '3s' }] } },
    });
    const err = await providerError(gemini().getStatus('batches/x'));
    assert.deepEqual({ code: err.details.code, retryable: err.details.retryable, retryAfterMs: err.details.retryAfterMs }, { code: 'rate_limited', retryable: true, retryAfterMs: 3_000 });
  });

  test('an id that is no batch name fails at once, without a call', async () => {
    const err = await providerError(gemini().getStatus('nope'));
    assert.deepEqual({ code: err.details.code, retryable: err.details.retryable }, { code: 'invalid_batch_id', retryable: false });
    assert.deepEqual(fake().routeCounts(), {});
  });

  test('findExisting pages through the job list and returns the newest job with our display name', async () => {
    const provider = gemini();
    await provider.submit({ batchId: 'bk-dupe', model: 'm', requests: geminiRequests(['a']) });
    for (let i = 0; i < 105; i++) await provider.submit({ batchId: `bk-filler-${i}`, model: 'm', requests: geminiRequests(['a']) });
    const second = await provider.submit({ batchId: 'bk-dupe', model: 'm', requests: geminiRequests(['a']) });
    assert.equal((await provider.findExisting('bk-dupe'))?.providerBatchId, second.providerBatchId);
    assert.equal(fake().routeCounts()['gemini.batches.list'], 2, 'second page needed');
  });
});

test('no ProviderError seen in this file mentions the API key', () => {
  assert.ok(seenErrors.length > 20);
  for (const err of seenErrors) assert.ok(!err.message.includes(API_KEY) && !JSON.stringify(err.details).includes(API_KEY));
});

/**
 * The xAI adapter (openai SDK as HTTP client on xAI's REST shapes) against the fake provider: the shared contract,
 * then xAI's own rules: a status derived from counts and cancel/expiry fields, gRPC error codes, paged results.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProviderResultLine } from '../providers/types';
import { XAIBatchProvider } from '../providers/xai';
import { providerContract, useFakeProvider } from './providers-contract';
import { API_KEY, byCustomId, collect, ids, requestsFor, resultText, seenErrors, waitForTerminal } from './providers-support';

const fake = useFakeProvider();

function xai(options: { maxRetries?: number; resultsPageSize?: number } = {}): XAIBatchProvider {
  return new XAIBatchProvider({ apiKey: API_KEY, baseURL: fake().xaiBaseUrl, timeoutMs: 5_000, ...options, maxRetries: options.maxRetries ?? 0 });
}

providerContract(fake, {
  title: 'xai',
  routes: 'xai',
  make: (options) => xai(options),
  requests: requestsFor,
  text: (line: ProviderResultLine) => resultText(line),
  unknownId: 'batch_nope',
  errorBody: (status, message) => ({ code: 'Request is unauthenticated', error: message }),
  expiredKind: 'errored',
  canceledLines: true,
  expiredLines: false,
  downloadRoute: 'xai.batches.results',
});

describe('xai specifics', () => {
  test('the status is derived from counts, cancel_time, cancel_by_xai_message and expire_time', async () => {
    const provider = xai();
    const past = '2020-01-01';
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const counts = (num_requests: number, num_pending: number, num_cancelled = 0) => ({ num_requests, num_pending, num_success: num_requests - num_pending - num_cancelled, num_error: 0, num_cancelled });
    const cases: [Record<string, unknown>, string, string][] = [
      [{ state: counts(0, 0), expire_time: future }, 'in_progress', 'validating'],
      [{ state: counts(5, 2), expire_time: future }, 'in_progress', 'in_progress'],
      [{ state: counts(5, 0), expire_time: future }, 'ended', 'completed'],
      [{ state: counts(5, 2), expire_time: future, cancel_time: future }, 'in_progress', 'cancelling'],
      [{ state: counts(5, 0, 2), expire_time: future, cancel_time: future }, 'canceled', 'cancelled'],
      [{ state: counts(5, 0, 2), expire_time: future }, 'canceled', 'cancelled'],
      [{ state: counts(5, 2), expire_time: past }, 'expired', 'expired'],
      [{ state: counts(0, 0), cancel_by_xai_message: 'Model grok-x is not supported for batch processing.' }, 'failed', 'rejected_by_xai'],
    ];
    for (const [fields, status, rawStatus] of cases) {
      fake().injectFault({ route: 'xai.batches.retrieve', status: 200, body: { batch_id: 'batch_x', name: 'n', ...fields } });
      const report = await provider.getStatus('batch_x');
      assert.deepEqual({ status: report.status, rawStatus: report.rawStatus }, { status, rawStatus }, JSON.stringify(fields));
    }
    fake().injectFault({ route: 'xai.batches.retrieve', status: 200, body: { batch_id: 'batch_x', state: counts(0, 0), cancel_by_xai_message: 'JSONL file validation failed.' } });
    assert.deepEqual((await provider.getStatus('batch_x')).failure, { code: 'rejected_by_xai', message: 'JSONL file validation failed.' });
  });

  test('results are read page by page with pagination_token', async () => {
    const provider = xai({ resultsPageSize: 7 });
    const { providerBatchId } = await provider.submit({ batchId: 'bk-pages', model: 'grok-4', requests: requestsFor(ids('p', 30)) });
    await waitForTerminal(provider, providerBatchId);
    const lines = await collect(provider.streamResults(providerBatchId));
    assert.equal(byCustomId(lines).size, 30);
    assert.equal(fake().routeCounts()['xai.batches.results'], 5);
  });

  test('per-request gRPC codes: INTERNAL retryable, INVALID_ARGUMENT permanent, CANCELLED a canceled line', async () => {
    fake().setOutcomes({ 'e-int': 'errored', 'e-arg': 'invalid', 'e-late': 'expired' });
    const provider = xai();
    const { providerBatchId } = await provider.submit({ batchId: 'bk-codes', model: 'grok-4', requests: requestsFor(['e-int', 'e-arg', 'e-late']) });
    await waitForTerminal(provider, providerBatchId);
    const joined = byCustomId(await collect(provider.streamResults(providerBatchId)));
    const code = (id: string) => (joined.get(id) as { errorCode?: string } | undefined)?.errorCode;
    assert.deepEqual([code('e-int'), code('e-arg'), code('e-late')], ['INTERNAL', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED']);
    assert.equal((joined.get('e-late') as { errorMessage?: string }).errorMessage, 'Deadline exceeded (simulated).');
  });

  test('a batch xAI rejects is failed with its message', async () => {
    fake().configure({ batchRules: [{ match: { provider: 'xai' }, outcome: 'failed' }] });
    const provider = xai();
    const { providerBatchId } = await provider.submit({ batchId: 'bk-rej', model: 'grok-x', requests: requestsFor(['a']) });
    const report = await waitForTerminal(provider, providerBatchId);
    assert.equal(report.failure?.code, 'rejected_by_xai');
    assert.match(report.failure.message, /^Batch rejected by xAI: /);
    assert.equal(report.counts.total, 0, 'xAI never counted the requests');
  });
});

test('no ProviderError seen in this file mentions the API key', () => {
  assert.ok(seenErrors.length > 10);
  for (const err of seenErrors) assert.ok(!err.message.includes(API_KEY) && !JSON.stringify(err.details).includes(API_KEY));
});

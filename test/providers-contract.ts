/**
 * The behaviour every added adapter (Gemini, xAI, OpenAI-compatible) must show against the fake provider, through
 * its real SDK or HTTP shape: lifecycle with results joined by id whatever their order, per-request outcomes, partial
 * results of cancelled, expired and failed batches, error classification, lost create responses. Each test file
 * registers it with what differs between providers, then adds its own specifics.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startFakeProvider, type FakeProvider } from '../testing/fake-provider/server';
import type { BatchProvider, ProviderRequest, ProviderResultLine } from '../providers/types';
import { API_KEY, byCustomId, collect, ids, providerError, sleep, waitForTerminal } from './providers-support';

export interface ContractSpec {
  /** describe() title. */
  title: string;
  /** Route-name prefix in the fake ('gemini', 'xai', 'groq'...). */
  routes: string;
  make(options?: { maxRetries?: number }): BatchProvider;
  requests(customIds: readonly string[]): ProviderRequest[];
  /** The answer text of a succeeded line. */
  text(line: ProviderResultLine): string;
  /** A well-formed provider batch id the fake does not know. */
  unknownId: string;
  /** A JSON error body in the provider's shape. */
  errorBody(status: number, message: string): unknown;
  /** What a request that ran out of time becomes: OpenAI shapes have `expired` lines, Google/xAI an error code. */
  expiredKind: 'expired' | 'errored';
  /** Whether requests a cancel left unprocessed come back as `canceled` lines (otherwise they have no line). */
  canceledLines: boolean;
  /** Whether requests an expiry left unprocessed come back as `expired` lines. */
  expiredLines: boolean;
  /** The route a truncated results download goes through; undefined when results come inline. */
  downloadRoute?: string;
}

/** One fake provider for the test file, reset before each test; the getter works inside tests and hooks. */
export function useFakeProvider(processingMs = 150): () => FakeProvider {
  let fake: FakeProvider | undefined;
  before(async () => {
    fake = await startFakeProvider({ processingMs });
  });
  after(async () => {
    await fake?.close();
  });
  beforeEach(() => fake?.reset());
  return () => {
    if (!fake) throw new Error('the fake provider is not started yet');
    return fake;
  };
}

export function countKinds(lines: readonly { kind: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of lines) counts[line.kind] = (counts[line.kind] ?? 0) + 1;
  return counts;
}

function pick(line: ProviderResultLine | undefined): { kind: string; retryable?: boolean } | undefined {
  if (!line) return undefined;
  return { kind: line.kind, ...('retryable' in line ? { retryable: line.retryable } : {}) };
}

export function providerContract(fake: () => FakeProvider, spec: ContractSpec): void {
  const make = (options?: { maxRetries?: number }) => spec.make(options);
  const route = (name: string) => `${spec.routes}.${name}`;
  const submit = (provider: BatchProvider, batchId: string, customIds: readonly string[]) =>
    provider.submit({ batchId, model: 'test-model', requests: spec.requests(customIds) });

  /** Partial results: the processed requests succeeded, the rest came back as `leftover` lines or not at all. */
  async function assertPartial(provider: BatchProvider, providerBatchId: string, total: number, leftover: string | undefined) {
    const lines = await collect(provider.streamResults(providerBatchId));
    const kinds = countKinds(lines);
    const succeeded = kinds.succeeded ?? 0;
    assert.ok(succeeded > 0 && succeeded < total, `some but not all requests ran: ${JSON.stringify(kinds)}`);
    assert.deepEqual(Object.keys(kinds).sort(), leftover ? [leftover, 'succeeded'].sort() : ['succeeded']);
    if (leftover) assert.equal(succeeded + (kinds[leftover] ?? 0), total);
    byCustomId(lines);
    return kinds;
  }

  describe(`${spec.title}: contract`, () => {
    test('submit → ended, results joined by id whatever their order, batch tagged with our id', async () => {
      const provider = make();
      const customIds = ids('life', 30);
      const submitted = await submit(provider, 'bk-life', customIds);
      assert.equal(submitted.report.status, 'in_progress');
      assert.equal(submitted.report.resultsAvailable, false);
      assert.equal(fake().createdBatches().find((info) => info.id === submitted.providerBatchId)?.batchkeeperBatchId, 'bk-life');

      const report = await waitForTerminal(provider, submitted.providerBatchId);
      assert.equal(report.status, 'ended');
      assert.equal(report.resultsAvailable, true);
      const lines = await collect(provider.streamResults(submitted.providerBatchId));
      const joined = byCustomId(lines);
      assert.equal(lines.length, 30);
      for (const id of customIds) {
        const line = joined.get(id);
        assert.ok(line?.kind === 'succeeded', `no success for ${id}`);
        assert.equal(spec.text(line), `Fake reply to ${id}.`);
        assert.ok(line.usage && line.usage.inputTokens > 0 && line.usage.outputTokens > 0, `usage of ${id}`);
      }
      assert.notDeepEqual(lines.map((line) => line.customId), customIds, 'the fake shuffles result order');
    });

    test('per-request errored / invalid / expired / missing / malformed outcomes', async () => {
      const provider = make();
      fake().setOutcomes({ 'o-err': 'errored', 'o-inv': 'invalid', 'o-exp': 'expired', 'o-miss': 'missing', 'o-bad': 'malformed' });
      const { providerBatchId } = await submit(provider, 'bk-out', ['o-ok1', 'o-err', 'o-inv', 'o-exp', 'o-miss', 'o-bad', 'o-ok2']);
      await waitForTerminal(provider, providerBatchId);
      const lines = await collect(provider.streamResults(providerBatchId));
      const joined = byCustomId(lines);
      assert.equal(lines.length, 6, 'the missing request has no line at all');
      assert.ok(!joined.has('o-miss'));
      assert.equal(joined.get('o-ok1')?.kind, 'succeeded');
      assert.equal(joined.get('o-ok2')?.kind, 'succeeded');
      assert.deepEqual(pick(joined.get('o-err')), { kind: 'errored', retryable: true });
      assert.deepEqual(pick(joined.get('o-inv')), { kind: 'errored', retryable: false });
      assert.deepEqual(pick(joined.get('o-exp')), { kind: spec.expiredKind, retryable: true });
      const malformed = joined.get('o-bad');
      assert.ok(malformed?.kind === 'malformed' && malformed.lineNumber >= 1 && malformed.errorMessage);
    });

    test('cancel: the batch ends canceled and every processed result is still there', async () => {
      const provider = make();
      fake().configure({ processingMs: 1_000, cancelDelayMs: 30 });
      const { providerBatchId } = await submit(provider, 'bk-cancel', ids('cancel', 40));
      await sleep(500);
      const afterCancel = await provider.cancel(providerBatchId);
      assert.ok(afterCancel.status === 'in_progress' || afterCancel.status === 'canceled', afterCancel.rawStatus);
      const report = await waitForTerminal(provider, providerBatchId);
      assert.equal(report.status, 'canceled');
      assert.equal(report.resultsAvailable, true);
      const kinds = await assertPartial(provider, providerBatchId, 40, spec.canceledLines ? 'canceled' : undefined);
      if (spec.canceledLines) assert.equal(report.counts.canceled, kinds.canceled);
      // Cancelling again after the end is not an error: it reports the final state.
      assert.equal((await provider.cancel(providerBatchId)).status, 'canceled');
    });

    const endings = [
      { what: 'expiry: the batch ends expired', rule: { expireAfterMs: 500 }, status: 'expired', leftover: spec.expiredLines ? 'expired' : undefined },
      { what: 'a failure mid-run: the batch ends failed', rule: { failAfterMs: 500 }, status: 'failed', leftover: undefined },
    ] as const;
    for (const { what, rule, status, leftover } of endings) {
      test(`${what} and keeps its partial results`, async () => {
        const provider = make();
        fake().configure({ batchRules: [{ match: { customId: 'end-0' }, processingMs: 1_000, ...rule }] });
        const { providerBatchId } = await submit(provider, 'bk-end', ids('end', 20));
        const report = await waitForTerminal(provider, providerBatchId);
        assert.equal(report.status, status);
        if (status === 'failed') assert.ok(report.failure?.code && report.failure.message);
        await assertPartial(provider, providerBatchId, 20, leftover);
      });
    }

    test('a batch failing validation reports the failure and has no results', async () => {
      const provider = make();
      fake().configure({ batchRules: [{ match: { customId: 'fval-0' }, outcome: 'failed' }] });
      const { providerBatchId } = await submit(provider, 'bk-fval', ids('fval', 3));
      const report = await waitForTerminal(provider, providerBatchId);
      assert.equal(report.status, 'failed');
      assert.ok(report.failure?.code && report.failure.message);
      assert.deepEqual(await collect(provider.streamResults(providerBatchId)), []);
    });

    test('503 with retry-after → retryable ProviderError with retryAfterMs', async () => {
      const provider = make();
      const { providerBatchId } = await submit(provider, 'bk-503', ['a']);
      fake().injectFault({ route: route('batches.retrieve'), status: 503, retryAfterSeconds: 7 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.deepEqual(
        { status: err.details.httpStatus, retryable: err.details.retryable, retryAfterMs: err.details.retryAfterMs },
        { status: 503, retryable: true, retryAfterMs: 7_000 },
      );
      assert.ok(err.message.startsWith(`${provider.name} getStatus ${providerBatchId}: HTTP 503`), err.message);
    });

    test('reads are retried by the client, every call reaching the fake; more faults surface retryable', async () => {
      const provider = make({ maxRetries: 2 });
      const { providerBatchId } = await submit(provider, 'bk-retry', ['a']);
      fake().injectFault({ route: route('batches.retrieve'), status: 500, retryAfterMs: 1, count: 2 });
      await provider.getStatus(providerBatchId);
      assert.equal(fake().counters(providerBatchId)?.retrieve, 3);
      fake().injectFault({ route: route('batches.retrieve'), status: 429, retryAfterMs: 1, count: 3 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.deepEqual({ code: err.details.code, retryable: err.details.retryable }, { code: 'rate_limited', retryable: true });
      assert.equal(fake().counters(providerBatchId)?.retrieve, 6);
    });

    test('a create is never retried by the client', async () => {
      const provider = make({ maxRetries: 2 });
      fake().injectFault({ route: route('batches.create'), status: 500, retryAfterMs: 1 });
      const err = await providerError(submit(provider, 'bk-noretry', ['a']));
      assert.equal(err.details.retryable, true);
      assert.equal(fake().routeCounts()[route('batches.create')], 1);
      assert.equal(fake().createdBatches().length, 0);
    });

    test('unknown batch id → non-retryable 404', async () => {
      const err = await providerError(make().getStatus(spec.unknownId));
      assert.deepEqual(
        { status: err.details.httpStatus, code: err.details.code, retryable: err.details.retryable },
        { status: 404, code: 'not_found', retryable: false },
      );
    });

    test('an HTML error page, or HTML with 200, is a clear retryable bad_response', async () => {
      const provider = make();
      const { providerBatchId } = await submit(provider, 'bk-html', ['a']);
      fake().injectFault({ route: route('batches.retrieve'), kind: 'html', status: 502 });
      const err = await providerError(provider.getStatus(providerBatchId));
      assert.deepEqual({ code: err.details.code, status: err.details.httpStatus, retryable: err.details.retryable }, { code: 'bad_response', status: 502, retryable: true });
      assert.ok(!err.message.includes('<html'), 'no body in the message');
      fake().injectFault({ route: route('batches.retrieve'), kind: 'html', status: 200 });
      assert.equal((await providerError(provider.getStatus(providerBatchId))).details.code, 'bad_response');
    });

    test('connection reset on create → retryable connection_error, nothing created', async () => {
      fake().injectFault({ route: route('batches.create'), kind: 'reset' });
      const err = await providerError(submit(make(), 'bk-reset', ['a']));
      assert.deepEqual({ code: err.details.code, retryable: err.details.retryable }, { code: 'connection_error', retryable: true });
      assert.equal(fake().createdBatches().length, 0);
    });

    test('a lost create response: findExisting finds the batch by our id', async () => {
      const provider = make();
      await submit(provider, 'bk-other', ['x']);
      fake().injectFault({ route: route('batches.create'), kind: 'drop_response' });
      assert.equal((await providerError(submit(provider, 'bk-lost', ['a', 'b']))).details.code, 'connection_error');
      const created = fake().createdBatches().find((info) => info.batchkeeperBatchId === 'bk-lost');
      assert.ok(created, 'the batch was created even though the response was lost');
      assert.equal((await provider.findExisting('bk-lost'))?.providerBatchId, created.id);
      assert.equal(await provider.findExisting('bk-never'), null);
    });

    test('results of a running batch are not available yet (retryable)', async () => {
      const provider = make();
      fake().configure({ processingMs: 5_000 });
      const { providerBatchId } = await submit(provider, 'bk-early', ['a']);
      const err = await providerError(collect(provider.streamResults(providerBatchId)));
      assert.deepEqual({ code: err.details.code, retryable: err.details.retryable }, { code: 'results_not_available', retryable: true });
    });

    test('duplicate custom ids are rejected before anything is sent', async () => {
      const err = await providerError(submit(make(), 'bk-dup', ['a', 'b', 'a']));
      assert.deepEqual({ code: err.details.code, retryable: err.details.retryable }, { code: 'duplicate_custom_id', retryable: false });
      assert.deepEqual(fake().routeCounts(), {});
    });

    test('the API key never appears in error messages, even when the provider echoes it', async () => {
      fake().injectFault({ route: route('batches.retrieve'), status: 401, body: spec.errorBody(401, `Incorrect API key provided: ${API_KEY}.`) });
      const err = await providerError(make().getStatus(spec.unknownId));
      assert.deepEqual({ code: err.details.code, retryable: err.details.retryable }, { code: 'unauthorized', retryable: false });
      assert.match(err.message, /\[redacted\]/);
    });

    const downloadRoute = spec.downloadRoute;
    if (downloadRoute) {
      test('a connection lost mid-download fails the stream with connection_error', async () => {
        const provider = make();
        const { providerBatchId } = await submit(provider, 'bk-trunc', ids('t', 3_000));
        await waitForTerminal(provider, providerBatchId);
        fake().injectFault({ route: downloadRoute, kind: 'truncate', afterLines: 10 });
        let received = 0;
        const err = await providerError((async () => {
          for await (const block of provider.streamResults(providerBatchId)) received += block.length;
        })());
        assert.equal(err.details.code, 'connection_error');
        assert.ok(received < 3_000, `received ${received}`);
      });
    }
  });
}

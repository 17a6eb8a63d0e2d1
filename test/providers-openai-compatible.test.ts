/**
 * OpenAI-compatible batch APIs through the OpenAI adapter, against the fake's variants: Groq (/openai/v1), Together
 * (UPPERCASE statuses), Mistral-style status names, Azure's dated API (api-version query, api-key header) and an
 * implementer with statuses no table knows. Then the registry: config, environment, limits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { loadConfig } from '../config/load';
import { KNOWN_PROVIDER_LIMITS } from '../domain/provider-limits';
import type { OpenAIVariantName } from '../testing/fake-provider/config';
import { OpenAICompatibleBatchProvider, type OpenAICompatibleOptions } from '../providers/openai-compatible';
import { createProviders } from '../providers/registry';
import { providerContract, useFakeProvider } from './providers-contract';
import { API_KEY, collect, providerError, requestsFor, resultText, seenErrors, sleep, waitForTerminal } from './providers-support';

const fake = useFakeProvider();

/** Registry name and adapter settings per fake variant. */
const VARIANTS: Record<OpenAIVariantName, { name: string; apiVersion?: string }> = {
  groq: { name: 'groq' },
  together: { name: 'together' },
  mistral: { name: 'mistral' },
  azure: { name: 'azure-openai', apiVersion: '2024-10-21' },
  oddball: { name: 'oddball' },
};

function compatible(variant: OpenAIVariantName, options: Partial<OpenAICompatibleOptions> = {}): OpenAICompatibleBatchProvider {
  return new OpenAICompatibleBatchProvider({
    ...VARIANTS[variant],
    apiKey: API_KEY,
    baseURL: fake().compatibleBaseUrl(variant),
    timeoutMs: 5_000,
    ...options,
    maxRetries: options.maxRetries ?? 0,
  });
}

for (const variant of Object.keys(VARIANTS) as OpenAIVariantName[]) {
  providerContract(fake, {
    title: `openai-compatible ${variant}`,
    routes: variant,
    make: (options) => compatible(variant, options),
    requests: requestsFor,
    text: resultText,
    unknownId: 'batch_nope',
    errorBody: (_status, message) => ({ error: { message, type: 'invalid_request_error', code: 'invalid_api_key' } }),
    expiredKind: 'expired',
    canceledLines: true,
    expiredLines: true,
    downloadRoute: `${variant}.files.content`,
  });
}

describe('openai-compatible specifics', () => {
  test('status names are matched case-insensitively; unknown ones read as still running', async () => {
    const seen: Record<string, string[]> = {};
    for (const variant of ['together', 'mistral', 'oddball'] as const) {
      const provider = compatible(variant);
      fake().configure({ processingMs: 400 });
      const { providerBatchId, report } = await provider.submit({ batchId: `bk-${variant}`, model: 'm', requests: requestsFor(['a', 'b']) });
      const raw = [report.rawStatus];
      for (let final = report; final.status === 'in_progress'; await sleep(20)) {
        final = await provider.getStatus(providerBatchId);
        if (raw[raw.length - 1] !== final.rawStatus) raw.push(final.rawStatus);
        assert.ok(final.status === 'in_progress' || final.status === 'ended', `${variant} ${final.rawStatus} → ${final.status}`);
      }
      seen[variant] = raw;
    }
    const expected: Record<string, string[]> = {
      together: ['VALIDATING', 'IN_PROGRESS', 'FINALIZING', 'COMPLETED'],
      mistral: ['QUEUED', 'RUNNING', 'SUCCESS'],
      oddball: ['Preprocessing', 'In_Progress', 'Writing_Output', 'Completed'],
    };
    for (const [variant, raw] of Object.entries(seen)) {
      // Polls may miss a short phase, never reorder them: what was seen is the expected list, in order, ends included.
      const positions = raw.map((status) => expected[variant]!.indexOf(status));
      assert.ok(positions.every((position, i) => position > (positions[i - 1] ?? -1)), `${variant}: ${raw.join(' → ')}`);
      assert.deepEqual([raw[0], raw.at(-1)], [expected[variant]![0], expected[variant]!.at(-1)], variant);
    }
  });

  test("Azure's dated API needs the api-version query and an api-key header", async () => {
    const withoutVersion = compatible('azure', { apiVersion: undefined });
    const err = await providerError(withoutVersion.submit({ batchId: 'bk-az', model: 'gpt-4o-mini-batch', requests: requestsFor(['a']) }));
    assert.deepEqual({ status: err.details.httpStatus, retryable: err.details.retryable }, { status: 404, retryable: false });
    const { providerBatchId } = await compatible('azure').submit({ batchId: 'bk-az', model: 'gpt-4o-mini-batch', requests: requestsFor(['a']) });
    assert.equal((await waitForTerminal(compatible('azure'), providerBatchId)).status, 'ended');
  });

  test('Groq takes completion windows beyond 24h', async () => {
    const provider = compatible('groq', { completionWindow: '7d' });
    const { providerBatchId } = await provider.submit({ batchId: 'bk-7d', model: 'llama-3.1-8b-instant', requests: requestsFor(['a']) });
    assert.equal((await collect(provider.streamResults((await waitForTerminal(provider, providerBatchId), providerBatchId)))).length, 1);
  });

  test('an implementer without a batch list: findExisting answers null instead of failing the submit', async () => {
    fake().injectFault({ route: 'groq.batches.list', status: 404 });
    assert.equal(await compatible('groq').findExisting('bk-any'), null);
    fake().injectFault({ route: 'groq.batches.list', status: 500 });
    assert.equal((await providerError(compatible('groq').findExisting('bk-any'))).details.retryable, true);
  });

  test('registry names must be new and well-formed', () => {
    assert.throws(() => compatible('groq', { name: 'openai' }), /not be a built-in provider/);
    assert.throws(() => compatible('groq', { name: 'Has Space' }), /must match/);
  });
});

describe('registry', () => {
  test('GEMINI_*, XAI_* and BATCHKEEPER_OPENAI_COMPATIBLE configure the new providers; keys come from their own variables', () => {
    const env = {
      GEMINI_API_KEY: 'g-key', GEMINI_BASE_URL: 'http://127.0.0.1:1',
      XAI_API_KEY: 'x-key',
      GROQ_API_KEY: 'groq-key', AZURE_OPENAI_API_KEY: 'az-key',
      BATCHKEEPER_OPENAI_COMPATIBLE: JSON.stringify([
        { name: 'groq', baseURL: 'https://api.groq.com/openai/v1', apiKeyEnv: 'GROQ_API_KEY', completionWindow: '48h' },
        { name: 'acme-batch', baseURL: 'https://azure.example/openai', apiKeyEnv: 'AZURE_OPENAI_API_KEY', apiVersion: '2024-10-21' },
        { name: 'unkeyed', baseURL: 'https://x.example/v1', apiKeyEnv: 'NOT_SET' },
      ]),
    };
    const providersConfigFromEnv = (variables: Record<string, string>) => loadConfig(variables, ['providers']).providers;
    const config = providersConfigFromEnv(env);
    assert.deepEqual(config.gemini, { apiKey: 'g-key', baseURL: 'http://127.0.0.1:1' });
    assert.deepEqual(config.xai, { apiKey: 'x-key' });
    assert.deepEqual(config.openaiCompatible, [
      { name: 'groq', baseURL: 'https://api.groq.com/openai/v1', apiKey: 'groq-key', completionWindow: '48h' },
      { name: 'acme-batch', baseURL: 'https://azure.example/openai', apiKey: 'az-key', apiVersion: '2024-10-21' },
    ]);
    const providers = createProviders(config);
    assert.deepEqual([...providers.keys()].sort(), ['acme-batch', 'gemini', 'groq', 'xai']);
    assert.deepEqual(config.limits['acme-batch'], KNOWN_PROVIDER_LIMITS.openai, 'a new name is validated with OpenAI limits');
    assert.deepEqual(config.limits.unkeyed, KNOWN_PROVIDER_LIMITS.openai, 'a name without a key on this process is still a provider the client accepts');
    assert.equal(providers.get('acme-batch')!.limits, KNOWN_PROVIDER_LIMITS.openai, 'the adapter carries the same limits');
    assert.throws(() => providersConfigFromEnv({ BATCHKEEPER_OPENAI_COMPATIBLE: '[{' }), /BATCHKEEPER_OPENAI_COMPATIBLE must be JSON/);
    assert.throws(() => providersConfigFromEnv({ BATCHKEEPER_OPENAI_COMPATIBLE: '[{"name":"x"}]' }), /BATCHKEEPER_OPENAI_COMPATIBLE 0\.baseURL/);
    assert.throws(() => createProviders({ ...config, openaiCompatible: [...config.openaiCompatible!, config.openaiCompatible![0]!] }), /configured twice/);
  });
});

test('no ProviderError seen in this file mentions the API key', () => {
  assert.ok(seenErrors.length > 40);
  for (const err of seenErrors) assert.ok(!err.message.includes(API_KEY) && !JSON.stringify(err.details).includes(API_KEY));
});

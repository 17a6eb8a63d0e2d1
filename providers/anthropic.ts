/**
 * Anthropic Message Batches adapter: inline requests on create, polling, and a results download that parses the
 * JSONL itself so one bad line fails only its own request. Built on the official SDK.
 */
import Anthropic from '@anthropic-ai/sdk';
import type { BatchCreateParams } from '@anthropic-ai/sdk/resources/messages/batches';
import { callProvider, classifyStream, requireObjectWithId, type CallContext } from './classify-error';
import { limitsFor, sdkOptions, type ClientOptions } from './client-options';
import type { ProviderLimits } from '../domain/provider-limits';
import { cancelOrReport, hasReadableResults, resultsBody } from './lifecycle';
import { asRecord, count, makeCounts, normaliseStatus, str, anthropicUsage, type JsonRecord } from './normalise';
import { checkedRequests } from './requests';
import { parseResultLines } from './result-lines';
import type {
  BatchProvider,
  SynchronousResult,
  ProviderRequest,
  ProviderBatchStatus,
  ProviderResultLine,
  ProviderStatusReport,
  SubmitInput,
  SubmitResult,
} from './types';

export type AnthropicProviderOptions = ClientOptions;

/** Anthropic rejects any other custom id; checking first turns a whole-batch 400 into a clear local error. */
const CUSTOM_ID_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;

/** Only `ended` is terminal; per-request cancellation and expiry show up in the counts and result lines. */
const STATUS_TABLE: Readonly<Record<string, ProviderBatchStatus>> = {
  in_progress: 'in_progress',
  canceling: 'in_progress',
  ended: 'ended',
};

export class AnthropicBatchProvider implements BatchProvider {
  readonly name = 'anthropic';
  readonly limits: ProviderLimits;
  private readonly client: Anthropic;
  private readonly secrets: readonly string[];

  constructor(options: AnthropicProviderOptions) {
    this.limits = limitsFor(this.name, options.limits);
    // The SDK's own spans (when a tracer provider is registered, worker/tracing.ts) keep to metadata whatever
    // ANTHROPIC_OPEN_TELEMETRY_* says: request and result bodies never go into traces.
    this.client = new Anthropic({
      ...sdkOptions(options), openTelemetry: { propagation: false, traces: { enabled: true, contentMode: 'metadata_only' } },
    });
    this.secrets = [options.apiKey];
  }

  async submit({ batchId, model, requests }: SubmitInput): Promise<SubmitResult> {
    const ctx = this.context('submit', batchId);
    const batchRequests: BatchCreateParams['requests'] = [];
    for await (const { customId, params } of checkedRequests(this.name, requests, CUSTOM_ID_PATTERN)) {
      batchRequests.push({ custom_id: customId, params: { ...params, model } as BatchCreateParams.Request['params'] });
    }
    // maxRetries 0: no idempotency key and no metadata to find the batch again, so an SDK retry after a lost
    // response would silently create a second batch.
    const batch = requireObjectWithId(
      await callProvider(ctx, () => this.client.messages.batches.create({ requests: batchRequests }, { maxRetries: 0 })),
      ctx,
      'a message batch object',
    );
    return { providerBatchId: batch.id, report: toReport(batch) };
  }

  /**
   * Always null: Message Batches carry no metadata or tags, so nothing ties a provider batch to our batch id.
   * Matching on creation time or request count would be a guess that could adopt someone else's batch. After a
   * lost create response the caller creates again; the rare duplicate is the price of never adopting wrongly.
   */
  async findExisting(_batchId: string): Promise<SubmitResult | null> {
    return null;
  }

  async getStatus(providerBatchId: string): Promise<ProviderStatusReport> {
    return toReport(await this.retrieve(this.context('getStatus', providerBatchId), providerBatchId));
  }

  async *streamResults(providerBatchId: string): AsyncGenerator<ProviderResultLine[]> {
    const ctx = this.context('streamResults', providerBatchId);
    const batch = await this.retrieve(ctx, providerBatchId);
    if (!hasReadableResults(toReport(batch), ctx)) return;
    const resultsUrl = str(batch.results_url);
    if (resultsUrl === undefined) return;
    // Not `messages.batches.results()`: its JSONL decoder throws on the first bad line and ends the stream. The
    // SDK client still makes the request (auth headers, retries, error classes); asResponse() hands back the raw
    // Response unread, and the SDK timeout covers only the headers, so a long download is not cut off.
    const response = await callProvider(ctx, () =>
      this.client.get(resultsUrl, { headers: { Accept: 'application/binary' } }).asResponse(),
    );
    const body = resultsBody(response, ctx);
    if (body) yield* classifyStream(ctx, parseResultLines(body, mapResultLine));
  }

  async cancel(providerBatchId: string): Promise<ProviderStatusReport> {
    const ctx = this.context('cancel', providerBatchId);
    return cancelOrReport(
      async () =>
        toReport(
          requireObjectWithId(
            await callProvider(ctx, () => this.client.messages.batches.cancel(providerBatchId)),
            ctx,
            'a message batch object',
          ),
        ),
      () => this.getStatus(providerBatchId),
    );
  }

  /** The straggler fallback: `messages.create` with the request's own params. */
  async completeSynchronously(model: string, request: ProviderRequest): Promise<SynchronousResult> {
    const ctx = this.context('completeSynchronously', request.customId);
    const params = { ...request.params, model, stream: false } as unknown as Parameters<Anthropic['messages']['create']>[0];
    const message = requireObjectWithId(await callProvider(ctx, () => this.client.messages.create(params as never)), ctx, 'a message') as JsonRecord;
    const usage = (message as { usage?: { input_tokens?: unknown; output_tokens?: unknown } }).usage;
    return {
      result: message,
      ...(usage && typeof usage.input_tokens === 'number' && typeof usage.output_tokens === 'number'
        ? { usage: { inputTokens: usage.input_tokens, outputTokens: usage.output_tokens } } : {}),
    };
  }

  private async retrieve(ctx: CallContext, providerBatchId: string): Promise<JsonRecord> {
    return requireObjectWithId(
      await callProvider(ctx, () => this.client.messages.batches.retrieve(providerBatchId)),
      ctx,
      'a message batch object',
    );
  }

  private context(operation: string, target: string): CallContext {
    return { provider: this.name, operation, target, secrets: this.secrets };
  }
}

function toReport(batch: JsonRecord): ProviderStatusReport {
  const rawStatus = str(batch.processing_status) ?? 'unknown';
  const requestCounts = asRecord(batch.request_counts);
  const counts = makeCounts({
    processing: count(requestCounts?.processing),
    succeeded: count(requestCounts?.succeeded),
    errored: count(requestCounts?.errored),
    canceled: count(requestCounts?.canceled),
    expired: count(requestCounts?.expired),
  });
  counts.total = counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired;
  return {
    status: normaliseStatus(rawStatus, STATUS_TABLE),
    rawStatus,
    counts,
    resultsAvailable: str(batch.results_url) !== undefined,
  };
}

/** One results line: `{custom_id, result: {type: succeeded|errored|canceled|expired, ...}}`. */
function mapResultLine(record: JsonRecord, customId: string, lineNumber: number): ProviderResultLine {
  const result = asRecord(record.result);
  switch (str(result?.type)) {
    case 'succeeded': {
      const usage = anthropicUsage(asRecord(result?.message)?.usage);
      return { kind: 'succeeded', customId, result: result?.message, ...(usage ? { usage } : {}) };
    }
    case 'errored': {
      // result.error is the API error envelope `{type:'error', error:{type, message}}`.
      const envelope = asRecord(result?.error);
      const error = asRecord(envelope?.error) ?? envelope;
      const errorCode = str(error?.type) ?? 'error';
      return {
        kind: 'errored',
        customId,
        errorCode,
        errorMessage: str(error?.message) ?? errorCode,
        retryable: errorCode !== 'invalid_request_error',
      };
    }
    case 'canceled':
      return { kind: 'canceled', customId, errorCode: 'canceled', errorMessage: 'batch was canceled before this request ran', retryable: true };
    case 'expired':
      return { kind: 'expired', customId, errorCode: 'expired', errorMessage: 'batch expired before this request ran', retryable: true };
    default:
      return { kind: 'malformed', customId, lineNumber, errorMessage: 'unknown result type' };
  }
}

/**
 * OpenAI Batch API adapter: JSONL upload (Files, purpose=batch) + POST /batches, polling, output/error file
 * streaming. Built on the official SDK; every call is classified into a ProviderError.
 */
import OpenAI, { toFile } from 'openai';
import type { BatchCreateParams } from 'openai/resources/batches';
import { callProvider, classifyStream, badResponse, requireObjectWithId, type CallContext } from './classify-error';
import { sdkOptions, type ClientOptions } from './client-options';
import { cancelOrReport, hasReadableResults, isJsonResponse, resultsBody } from './lifecycle';
import { asRecord, count, makeCounts, normaliseStatus, str, usageFrom, type JsonRecord } from './normalise';
import { checkedRequests } from './requests';
import { parseResultLines } from './result-lines';
import type {
  BatchProvider,
  ProviderBatchStatus,
  ProviderRequest,
  ProviderResultLine,
  ProviderStatusReport,
  SubmitInput,
  SubmitResult,
} from './types';

export interface OpenAIProviderOptions extends ClientOptions {
  /** Batch endpoint and per-line url. Default '/v1/chat/completions'. */
  endpoint?: string;
  /** Default '24h' (the only window OpenAI accepts today). */
  completionWindow?: string;
  /** How many recent batches findExisting inspects before giving up. Default 500. */
  findExistingScanLimit?: number;
}

/** Metadata key that ties a provider batch to batchkeeper's batch id (the basis of findExisting). */
export const BATCH_ID_METADATA_KEY = 'batchkeeper_batch_id';

const STATUS_TABLE: Readonly<Record<string, ProviderBatchStatus>> = {
  validating: 'in_progress',
  in_progress: 'in_progress',
  finalizing: 'in_progress',
  cancelling: 'in_progress',
  completed: 'ended',
  failed: 'failed',
  expired: 'expired',
  cancelled: 'canceled',
  canceled: 'canceled',
};

const LIST_PAGE_SIZE = 100;
const UPLOAD_CHUNK_CHARS = 1 << 16;

export class OpenAIBatchProvider implements BatchProvider {
  readonly name = 'openai';
  private readonly client: OpenAI;
  private readonly endpoint: string;
  private readonly completionWindow: string;
  private readonly scanLimit: number;
  private readonly secrets: readonly string[];

  constructor(options: OpenAIProviderOptions) {
    this.client = new OpenAI(sdkOptions(options));
    this.endpoint = options.endpoint ?? '/v1/chat/completions';
    this.completionWindow = options.completionWindow ?? '24h';
    this.scanLimit = options.findExistingScanLimit ?? 500;
    this.secrets = [options.apiKey];
  }

  async submit({ batchId, model, requests }: SubmitInput): Promise<SubmitResult> {
    const ctx = this.context('submit', batchId);
    // Built before any HTTP call, so invalid input fails without leaving an orphan upload behind.
    const file = await toFile(this.inputJsonl(model, requests), `batchkeeper-${batchId}.jsonl`, { type: 'application/jsonl' });
    // A retried upload only leaves an unused file behind, so the SDK may retry it.
    const uploaded = requireObjectWithId(
      await callProvider(ctx, () => this.client.files.create({ file, purpose: 'batch' })),
      ctx,
      'a file object',
    );
    // maxRetries 0: the SDK sends no idempotency key, so its own retry could create a second batch. Our retry layer
    // calls findExisting before creating again.
    const batch = await callProvider(ctx, () =>
      this.client.batches.create(
        {
          input_file_id: uploaded.id,
          endpoint: this.endpoint as BatchCreateParams['endpoint'],
          completion_window: this.completionWindow as BatchCreateParams['completion_window'],
          metadata: { [BATCH_ID_METADATA_KEY]: batchId },
        },
        { maxRetries: 0 },
      ),
    );
    return this.submitResult(batch, ctx);
  }

  async findExisting(batchId: string): Promise<SubmitResult | null> {
    const ctx = this.context('findExisting', batchId);
    const found = await callProvider(ctx, async () => {
      const { data: firstPage, response } = await this.client.batches.list({ limit: LIST_PAGE_SIZE }).withResponse();
      // A non-JSON page parses as an empty list; answering "none" would make the caller create a duplicate.
      if (!isJsonResponse(response)) throw badResponse(ctx, 'batch list is not JSON');
      let scanned = 0;
      // Newest first, so the first match is the newest batch for this id, whatever its status.
      for await (const page of firstPage.iterPages()) {
        for (const batch of page.getPaginatedItems()) {
          if (asRecord(batch.metadata)?.[BATCH_ID_METADATA_KEY] === batchId) return batch;
          if (++scanned >= this.scanLimit) return null;
        }
      }
      return null;
    });
    return found ? this.submitResult(found, ctx) : null;
  }

  async getStatus(providerBatchId: string): Promise<ProviderStatusReport> {
    return toReport(await this.retrieve(this.context('getStatus', providerBatchId), providerBatchId));
  }

  async *streamResults(providerBatchId: string): AsyncGenerator<ProviderResultLine> {
    const ctx = this.context('streamResults', providerBatchId);
    const batch = await this.retrieve(ctx, providerBatchId);
    if (!hasReadableResults(toReport(batch), ctx)) return;
    // Output file first (successes), then the error file (failed, expired and cancelled requests).
    for (const fileId of [str(batch.output_file_id), str(batch.error_file_id)]) {
      if (fileId === undefined) continue;
      const response = await callProvider(ctx, () => this.client.files.content(fileId));
      const body = resultsBody(response, ctx);
      if (body) yield* classifyStream(ctx, parseResultLines(body, mapResultLine));
    }
  }

  async cancel(providerBatchId: string): Promise<ProviderStatusReport> {
    const ctx = this.context('cancel', providerBatchId);
    return cancelOrReport(
      async () =>
        toReport(requireObjectWithId(await callProvider(ctx, () => this.client.batches.cancel(providerBatchId)), ctx, 'a batch object')),
      () => this.getStatus(providerBatchId),
    );
  }

  private async retrieve(ctx: CallContext, providerBatchId: string): Promise<JsonRecord> {
    return requireObjectWithId(await callProvider(ctx, () => this.client.batches.retrieve(providerBatchId)), ctx, 'a batch object');
  }

  private submitResult(batch: unknown, ctx: CallContext): SubmitResult {
    const record = requireObjectWithId(batch, ctx, 'a batch object');
    return { providerBatchId: record.id, report: toReport(record) };
  }

  /** JSONL input lines, joined into ~64 KB string chunks so the upload is not assembled from 50,000 tiny parts. */
  private async *inputJsonl(
    model: string,
    requests: AsyncIterable<ProviderRequest> | Iterable<ProviderRequest>,
  ): AsyncGenerator<string> {
    let chunk = '';
    for await (const { customId, params } of checkedRequests(this.name, requests)) {
      chunk += `${JSON.stringify({ custom_id: customId, method: 'POST', url: this.endpoint, body: { ...params, model } })}\n`;
      if (chunk.length >= UPLOAD_CHUNK_CHARS) {
        yield chunk;
        chunk = '';
      }
    }
    if (chunk) yield chunk;
  }

  private context(operation: string, target: string): CallContext {
    return { provider: this.name, operation, target, secrets: this.secrets };
  }
}

function toReport(batch: JsonRecord): ProviderStatusReport {
  const rawStatus = str(batch.status) ?? 'unknown';
  const status = normaliseStatus(rawStatus, STATUS_TABLE);
  const requestCounts = asRecord(batch.request_counts);
  const total = count(requestCounts?.total);
  const succeeded = count(requestCounts?.completed);
  const errored = count(requestCounts?.failed);
  const remainder = Math.max(0, total - succeeded - errored);
  // OpenAI only counts completed/failed; once the batch is over, the rest were cancelled or expired unprocessed.
  const counts = makeCounts({
    total,
    succeeded,
    errored,
    processing: status === 'in_progress' ? remainder : 0,
    canceled: status === 'canceled' ? remainder : 0,
    expired: status === 'expired' ? remainder : 0,
  });
  const report: ProviderStatusReport = {
    status,
    rawStatus,
    counts,
    resultsAvailable: str(batch.output_file_id) !== undefined || str(batch.error_file_id) !== undefined,
  };
  if (status === 'failed') report.failure = batchFailure(batch);
  return report;
}

function batchFailure(batch: JsonRecord): { code: string; message: string } {
  const errors = asRecord(batch.errors)?.data;
  const first = Array.isArray(errors) ? asRecord(errors[0]) : undefined;
  return {
    code: str(first?.code) ?? 'batch_failed',
    message: str(first?.message) ?? 'OpenAI reported the batch as failed without details',
  };
}

/** One output/error file line: `{custom_id, response: {status_code, body} | null, error: {code, message} | null}`. */
function mapResultLine(record: JsonRecord, customId: string, lineNumber: number): ProviderResultLine {
  const response = asRecord(record.response);
  const statusCode = response?.status_code;
  if (response && typeof statusCode === 'number') {
    const body = asRecord(response.body);
    if (statusCode >= 200 && statusCode < 300) {
      const usage = usageFrom(body?.usage, 'prompt_tokens', 'completion_tokens');
      return { kind: 'succeeded', customId, result: response.body, ...(usage ? { usage } : {}) };
    }
    const error = asRecord(body?.error);
    return {
      kind: 'errored',
      customId,
      errorCode: str(error?.code) ?? str(error?.type) ?? `http_${statusCode}`,
      errorMessage: str(error?.message) ?? `request failed with HTTP ${statusCode}`,
      // 4xx means the request itself is wrong; 5xx and 429 are the provider's trouble.
      retryable: statusCode >= 500 || statusCode === 429 || statusCode === 408,
    };
  }
  const error = asRecord(record.error);
  if (error) {
    const errorCode = str(error.code) ?? 'error';
    const errorMessage = str(error.message) ?? errorCode;
    if (errorCode === 'batch_expired') return { kind: 'expired', customId, errorCode, errorMessage, retryable: true };
    if (errorCode === 'batch_cancelled') return { kind: 'canceled', customId, errorCode, errorMessage, retryable: true };
    // Line-level errors without a response are batch-processing failures; only invalid input is permanent.
    return { kind: 'errored', customId, errorCode, errorMessage, retryable: !/invalid/i.test(errorCode) };
  }
  return { kind: 'malformed', customId, lineNumber, errorMessage: 'line has neither response nor error' };
}

/**
 * OpenAI Batch API adapter: JSONL upload (Files, purpose=batch) + POST /batches, polling, output/error file
 * streaming. Built on the official SDK; every call is classified into a ProviderError. OpenAI-compatible batch APIs
 * reuse it with their own name, client and status vocabulary (openai-compatible.ts).
 */
import OpenAI from 'openai';
import type { BatchCreateParams } from 'openai/resources/batches';
import { callProvider, classifyStream, badResponse, requireObjectWithId, type CallContext } from './classify-error';
import { limitsFor, sdkOptions, type ClientOptions } from './client-options';
import type { ProviderLimits } from '../domain/provider-limits';
import { cancelOrReport, deleteEach, withoutNotFound, hasReadableResults, isJsonResponse, resultsBody } from './lifecycle';
import { asRecord, count, makeCounts, normaliseStatus, str, openaiUsage, type JsonRecord } from './normalise';
import { checkedRequests, jsonlChunks } from './requests';
import { parseResultLines } from './result-lines';
import { ProviderError } from './errors';
import { withUploadFile } from './upload-file';
import type {
  BatchProvider,
  SynchronousResult,
  DeleteFilesInput,
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
  /**
   * `expires_after` of the uploaded input file and `output_expires_after` of the batch's output and error files, in
   * seconds after creation (3600 to 2592000): the provider drops them then even if deleteFiles never ran. 0: not
   * sent (OpenAI keeps batch files 30 days). Default 604800 (7 days) for 'openai'; OpenAI-compatible names send it
   * only when given.
   */
  fileExpirySeconds?: number;
}

/** Metadata key that ties a provider batch to batchkeeper's batch id (the basis of findExisting). */
export const BATCH_ID_METADATA_KEY = 'batchkeeper_batch_id';

/** What an OpenAI-shaped provider changes: registry name, SDK client (base URL, auth, query) and status names. */
export interface OpenAIShape {
  name: string;
  client: OpenAI;
  /** Lower-case provider status → normalised status; anything else counts as still running. */
  statusTable: Readonly<Record<string, ProviderBatchStatus>>;
}

export const OPENAI_STATUS_TABLE: Readonly<Record<string, ProviderBatchStatus>> = {
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
/** expires_after of OpenAI's uploads and output files unless configured: a week, well past any batch's deadline. */
export const DEFAULT_FILE_EXPIRY_SECONDS = 7 * 24 * 3600;

export class OpenAIBatchProvider implements BatchProvider {
  readonly name: string;
  readonly limits: ProviderLimits;
  private readonly client: OpenAI;
  private readonly statusTable: OpenAIShape['statusTable'];
  private readonly endpoint: string;
  private readonly completionWindow: string;
  private readonly scanLimit: number;
  private readonly secrets: readonly string[];
  private readonly expiry: { anchor: 'created_at'; seconds: number } | undefined;
  /** Set unless the options turn deletion off. */
  readonly deleteFiles?: (input: DeleteFilesInput) => Promise<{ deleted: number }>;

  constructor(options: OpenAIProviderOptions, shape: Partial<OpenAIShape> = {}) {
    this.name = shape.name ?? 'openai';
    this.limits = limitsFor(this.name, options.limits);
    this.client = shape.client ?? new OpenAI(sdkOptions(options));
    this.statusTable = shape.statusTable ?? OPENAI_STATUS_TABLE;
    this.endpoint = options.endpoint ?? '/v1/chat/completions';
    this.completionWindow = options.completionWindow ?? '24h';
    this.scanLimit = options.findExistingScanLimit ?? 500;
    this.secrets = [options.apiKey];
    const seconds = options.fileExpirySeconds ?? (this.name === 'openai' ? DEFAULT_FILE_EXPIRY_SECONDS : 0);
    if (seconds !== 0 && (!Number.isInteger(seconds) || seconds < 3600 || seconds > 2_592_000)) {
      throw new Error(`${this.name} fileExpirySeconds must be 0 or a whole number from 3600 to 2592000 (got ${seconds})`);
    }
    this.expiry = seconds !== 0 ? { anchor: 'created_at', seconds } : undefined;
    if (options.deleteFiles !== false) this.deleteFiles = (input) => this.removeFiles(input);
  }

  async submit({ batchId, model, requests, endpoint: batchEndpoint }: SubmitInput): Promise<SubmitResult> {
    const ctx = this.context('submit', batchId);
    const endpoint = batchEndpoint ?? this.endpoint;
    // Written out before any HTTP call, so invalid input fails without leaving an orphan upload behind. A retried
    // upload only leaves an unused file behind, so the SDK may retry it.
    const uploaded = await withUploadFile(batchInputJsonl(this.name, endpoint, model, requests), `batchkeeper-${batchId}.jsonl`, async (file) =>
      requireObjectWithId(await callProvider(ctx, () => this.client.files.create({
        file, purpose: 'batch', ...(this.expiry ? { expires_after: this.expiry } : {}),
      })), ctx, 'a file object'));
    // maxRetries 0: the SDK sends no idempotency key, so its own retry could create a second batch. Our retry layer
    // calls findExisting before creating again.
    const batch = await callProvider(ctx, () =>
      this.client.batches.create(
        {
          input_file_id: uploaded.id,
          endpoint: endpoint as BatchCreateParams['endpoint'],
          completion_window: this.completionWindow as BatchCreateParams['completion_window'],
          metadata: { [BATCH_ID_METADATA_KEY]: batchId },
          ...(this.expiry ? { output_expires_after: this.expiry } : {}),
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
    return this.toReport(await this.retrieve(this.context('getStatus', providerBatchId), providerBatchId));
  }

  async *streamResults(providerBatchId: string): AsyncGenerator<ProviderResultLine[]> {
    const ctx = this.context('streamResults', providerBatchId);
    const batch = await this.retrieve(ctx, providerBatchId);
    if (!hasReadableResults(this.toReport(batch), ctx)) return;
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
        this.toReport(requireObjectWithId(await callProvider(ctx, () => this.client.batches.cancel(providerBatchId)), ctx, 'a batch object')),
      () => this.getStatus(providerBatchId),
    );
  }

  /** The straggler fallback: `chat.completions.create` with the request's own body (chat-completion batches only). */
  async completeSynchronously(model: string, request: ProviderRequest): Promise<SynchronousResult> {
    if (this.endpoint !== '/v1/chat/completions') {
      throw new ProviderError(`${this.name} has no synchronous fallback for batches of ${this.endpoint}`, { code: 'unsupported', retryable: false, provider: this.name });
    }
    const ctx = this.context('completeSynchronously', request.customId);
    const body = { ...request.params, model, stream: false } as unknown as Parameters<OpenAI['chat']['completions']['create']>[0];
    const completion = requireObjectWithId(await callProvider(ctx, () => this.client.chat.completions.create(body)), ctx, 'a chat completion') as JsonRecord;
    const usage = (completion as { usage?: { prompt_tokens?: unknown; completion_tokens?: unknown } }).usage;
    return {
      result: completion,
      ...(usage && typeof usage.prompt_tokens === 'number' && typeof usage.completion_tokens === 'number'
        ? { usage: { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens } } : {}),
    };
  }

  /**
   * Input, output and error files of the batch; a file already gone is fine. The batch is read only when the ids
   * stored with its submission and last status read are not all known.
   */
  private async removeFiles({ providerBatchId, inputFileId, resultFileIds }: DeleteFilesInput): Promise<{ deleted: number }> {
    const ctx = this.context('deleteFiles', providerBatchId);
    if (inputFileId !== null && resultFileIds !== null) return deleteEach(ctx, [inputFileId, ...resultFileIds], (id) => this.client.files.delete(id));
    const batch = await withoutNotFound(() => this.retrieve(ctx, providerBatchId));
    const ids = [inputFileId, str(batch?.input_file_id), str(batch?.output_file_id), str(batch?.error_file_id)];
    return deleteEach(ctx, ids, (id) => this.client.files.delete(id));
  }

  private async retrieve(ctx: CallContext, providerBatchId: string): Promise<JsonRecord> {
    return requireObjectWithId(await callProvider(ctx, () => this.client.batches.retrieve(providerBatchId)), ctx, 'a batch object');
  }

  private submitResult(batch: unknown, ctx: CallContext): SubmitResult {
    const record = requireObjectWithId(batch, ctx, 'a batch object');
    const inputFileId = str(record.input_file_id);
    return { providerBatchId: record.id, report: this.toReport(record), ...(inputFileId ? { inputFileId } : {}) };
  }

  private toReport(batch: JsonRecord): ProviderStatusReport {
    return toReport(batch, this.statusTable);
  }

  private context(operation: string, target: string): CallContext {
    return { provider: this.name, operation, target, secrets: this.secrets };
  }
}

/**
 * The OpenAI batch input file, in upload-sized chunks: one `{custom_id, method, url, body}` line per request, the
 * model in every body. xAI takes the same lines.
 */
export function batchInputJsonl(
  provider: string,
  endpoint: string,
  model: string,
  requests: AsyncIterable<ProviderRequest> | Iterable<ProviderRequest>,
): AsyncGenerator<string> {
  async function* lines(): AsyncGenerator<string> {
    const head = `,"method":"POST","url":${JSON.stringify(endpoint)},"body":`;
    const modelMember = `"model":${JSON.stringify(model)}`;
    for await (const request of checkedRequests(provider, requests)) {
      // The body is the params with the model added last (validation allows only the batch's own model in params,
      // so a repeated "model" member carries the same value).
      const params = request.paramsJson ?? JSON.stringify(request.params);
      const body = params === '{}' ? `{${modelMember}}` : `${params.slice(0, -1)},${modelMember}}`;
      yield `{"custom_id":${JSON.stringify(request.customId)}${head}${body}}`;
    }
  }
  return jsonlChunks(lines());
}

function toReport(batch: JsonRecord, statusTable: OpenAIShape['statusTable']): ProviderStatusReport {
  const rawStatus = str(batch.status) ?? 'unknown';
  const status = normaliseStatus(rawStatus, statusTable);
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
    resultFileIds: [str(batch.output_file_id), str(batch.error_file_id)].filter((id): id is string => id !== undefined),
  };
  if (status === 'failed') report.failure = batchFailure(batch);
  return report;
}

function batchFailure(batch: JsonRecord): { code: string; message: string } {
  const errors = asRecord(batch.errors)?.data;
  const first = Array.isArray(errors) ? asRecord(errors[0]) : undefined;
  return {
    code: str(first?.code) ?? 'batch_failed',
    message: str(first?.message) ?? `the provider reported the batch as ${str(batch.status) ?? 'failed'} without details`,
  };
}

/** One output/error file line: `{custom_id, response: {status_code, body} | null, error: {code, message} | null}`. */
function mapResultLine(record: JsonRecord, customId: string, lineNumber: number): ProviderResultLine {
  const response = asRecord(record.response);
  const statusCode = response?.status_code;
  if (response && typeof statusCode === 'number') {
    const body = asRecord(response.body);
    if (statusCode >= 200 && statusCode < 300) {
      const usage = openaiUsage(body?.usage);
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

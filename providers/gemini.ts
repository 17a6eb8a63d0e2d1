/**
 * Gemini API batch mode adapter on `@google/genai`: requests go inline when their JSON stays under 20 MB, otherwise
 * as a JSONL file (Files API, lines `{key, request}`). Results are joined by `metadata.key` (inlined responses) or
 * `key` (responses file lines); whatever output a cancelled, expired or failed job has is streamed too. The 48 h
 * expiry is the provider's own.
 *
 * Params are the REST GenerateContentRequest without the model: `contents`, `systemInstruction`, `generationConfig`,
 * `tools`, `toolConfig`, `safetySettings`, `cachedContent`. Inline requests go through the SDK's own converters (its
 * `config` is the REST generationConfig flattened with the other fields); file lines carry the params verbatim.
 */
import type { BatchJob, ContentListUnion, GenerateContentConfig, InlinedRequest, InlinedResponse } from '@google/genai' with { 'resolution-mode': 'import' };
import { badResponse, callProvider, classifyStream, describeCall, type CallContext } from './classify-error';
import { limitsFor, sdkOptions, type ClientOptions } from './client-options';
import type { ProviderLimits } from '../domain/provider-limits';
import { ProviderError } from './errors';
import { retryingFetch } from './http-fetch';
import { cancelOrReport, deleteEach, hasReadableResults, resultsBody, withoutNotFound } from './lifecycle';
import { asRecord, makeCounts, normaliseStatus, str, geminiUsage, type JsonRecord } from './normalise';
import { checkedRequests, jsonlChunks } from './requests';
import { parseResultLines } from './result-lines';
import { rpcErrorLine } from './rpc-errors';
import type { BatchProvider, DeleteFilesInput, ProviderBatchStatus, ProviderRequest, ProviderResultLine, ProviderStatusReport, SubmitInput, SubmitResult } from './types';

type GenAIModule = typeof import('@google/genai', { with: { 'resolution-mode': 'import' } });
// The package ships ESM typings but a CommonJS build (its `require` export), which is what this CommonJS module loads.
const { GoogleGenAI } = require('@google/genai') as GenAIModule;

export interface GeminiProviderOptions extends ClientOptions {
  /** Without the API version, e.g. http://127.0.0.1:4010. Default https://generativelanguage.googleapis.com. */
  baseURL?: string;
  /** Requests whose JSONL stays within this many bytes go inline; larger batches are uploaded. Default 20 MB. */
  inlineLimitBytes?: number;
  /** How many recent batch jobs findExisting inspects before giving up. Default 500. */
  findExistingScanLimit?: number;
}

const DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com';
const API_VERSION = 'v1beta';
const DEFAULT_INLINE_LIMIT_BYTES = 20 * 1024 * 1024;
const LIST_PAGE_SIZE = 100;
const BATCH_NAME = /^batches\/[^/]+$/;

/** The SDK reports JOB_STATE_*; the REST API says BATCH_STATE_*. Both are accepted, in any case. */
const STATUS_TABLE: Readonly<Record<string, ProviderBatchStatus>> = {
  job_state_pending: 'in_progress',
  job_state_queued: 'in_progress',
  job_state_running: 'in_progress',
  job_state_cancelling: 'in_progress',
  job_state_succeeded: 'ended',
  job_state_partially_succeeded: 'ended',
  job_state_failed: 'failed',
  job_state_cancelled: 'canceled',
  job_state_expired: 'expired',
  batch_state_pending: 'in_progress',
  batch_state_running: 'in_progress',
  batch_state_succeeded: 'ended',
  batch_state_failed: 'failed',
  batch_state_cancelled: 'canceled',
  batch_state_expired: 'expired',
};

/** Gemini batch jobs carry a display name but no metadata: it is what ties a job to our batch id. */
export function displayNameFor(batchId: string): string {
  return `batchkeeper-${batchId}`;
}

export class GeminiBatchProvider implements BatchProvider {
  readonly name = 'gemini';
  readonly limits: ProviderLimits;
  private readonly ai: InstanceType<GenAIModule['GoogleGenAI']>;
  private readonly fetch: typeof fetch;
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly inlineLimitBytes: number;
  private readonly scanLimit: number;
  private readonly secrets: readonly string[];
  /** Set unless the options turn deletion off. */
  readonly deleteFiles?: (input: DeleteFilesInput) => Promise<{ deleted: number }>;

  constructor(options: GeminiProviderOptions) {
    this.limits = limitsFor(this.name, options.limits);
    const { apiKey, timeout, maxRetries } = sdkOptions(options);
    this.apiKey = apiKey;
    this.timeoutMs = timeout;
    this.baseUrl = (options.baseURL ?? DEFAULT_BASE_URL).replace(/\/+$/, '');
    // The SDK retries nothing unless asked, and its errors carry no headers; this fetch retries reads only and
    // keeps status, headers (retry-after) and body of a failed call for classification.
    this.fetch = retryingFetch(maxRetries);
    this.ai = new GoogleGenAI({ apiKey, apiVersion: API_VERSION, httpOptions: { baseUrl: this.baseUrl, timeout, fetch: this.fetch } });
    this.inlineLimitBytes = options.inlineLimitBytes ?? DEFAULT_INLINE_LIMIT_BYTES;
    this.scanLimit = options.findExistingScanLimit ?? 500;
    this.secrets = [apiKey];
    if (options.deleteFiles !== false) this.deleteFiles = (input) => this.removeFiles(input);
  }

  async submit({ batchId, model, requests }: SubmitInput): Promise<SubmitResult> {
    const ctx = this.context('submit', batchId);
    // Built before any HTTP call, so invalid input fails without leaving an orphan upload behind.
    const input = await this.batchInput(requests);
    const displayName = displayNameFor(batchId);
    let src: string | InlinedRequest[];
    if (input.inline) {
      src = input.inline;
    } else {
      const file = new Blob(input.jsonl, { type: 'application/jsonl' });
      const uploaded = await callProvider(ctx, () => this.ai.files.upload({ file, config: { mimeType: 'application/jsonl', displayName } }));
      src = requireName(uploaded, /^files\/[^/]+$/, ctx, 'a file');
    }
    // Never retried here (POST): a second create would be a second job; findExisting finds the first by name.
    const job = await callProvider(ctx, () => this.ai.batches.create({ model: model.replace(/^models\//, ''), src, config: { displayName } }));
    const providerBatchId = requireName(job, BATCH_NAME, ctx, 'a batch job');
    const report = toReport(job);
    report.counts.total = Math.max(report.counts.total, input.count);
    return { providerBatchId, report, ...(typeof src === 'string' ? { inputFileId: src } : {}) };
  }

  async findExisting(batchId: string): Promise<SubmitResult | null> {
    const ctx = this.context('findExisting', batchId);
    const wanted = displayNameFor(batchId);
    const found = await callProvider(ctx, async () => {
      let newest: BatchJob | undefined;
      let scanned = 0;
      // The list order is not documented, so every job seen is compared and the newest match wins.
      for await (const job of await this.ai.batches.list({ config: { pageSize: LIST_PAGE_SIZE } })) {
        if (job.displayName === wanted && (!newest || (job.createTime ?? '') > (newest.createTime ?? ''))) newest = job;
        if (++scanned >= this.scanLimit) break;
      }
      return newest;
    });
    return found ? { providerBatchId: requireName(found, BATCH_NAME, ctx, 'a batch job'), report: toReport(found) } : null;
  }

  async getStatus(providerBatchId: string): Promise<ProviderStatusReport> {
    return toReport(await this.retrieve(this.context('getStatus', providerBatchId), providerBatchId));
  }

  async *streamResults(providerBatchId: string): AsyncGenerator<ProviderResultLine[]> {
    const ctx = this.context('streamResults', providerBatchId);
    const job = await this.retrieve(ctx, providerBatchId);
    if (!hasReadableResults(toReport(job), ctx)) return;
    let position = 0;
    const inlined = job.dest?.inlinedResponses ?? [];
    if (inlined.length > 0) yield inlined.map((response) => inlinedResultLine(response, ++position));
    const fileName = job.dest?.fileName;
    if (fileName === undefined) return;
    const body = resultsBody(await this.download(ctx, fileName), ctx);
    if (body) yield* classifyStream(ctx, parseResultLines(body, mapResult, 'key'));
  }

  async cancel(providerBatchId: string): Promise<ProviderStatusReport> {
    const ctx = this.context('cancel', providerBatchId);
    checkBatchName(providerBatchId, ctx);
    // The cancel call answers with an empty body; the job's state is read afterwards.
    return cancelOrReport(
      async () => {
        await callProvider(ctx, () => this.ai.batches.cancel({ name: providerBatchId }));
        return this.getStatus(providerBatchId);
      },
      () => this.getStatus(providerBatchId),
    );
  }

  /**
   * The uploaded input file and the responses file (inline batches have neither); a file already gone is fine. The
   * job is read only when its last status read's responses file is not known.
   */
  private async removeFiles({ providerBatchId, inputFileId, resultFileIds }: DeleteFilesInput): Promise<{ deleted: number }> {
    const ctx = this.context('deleteFiles', providerBatchId);
    const resultFiles = resultFileIds ?? [(await withoutNotFound(() => this.retrieve(ctx, providerBatchId)))?.dest?.fileName];
    return deleteEach(ctx, [inputFileId, ...resultFiles], (name) => this.ai.files.delete({ name }));
  }

  private async retrieve(ctx: CallContext, providerBatchId: string): Promise<BatchJob> {
    checkBatchName(providerBatchId, ctx);
    const job = await callProvider(ctx, () => this.ai.batches.get({ name: providerBatchId }));
    requireName(job, BATCH_NAME, ctx, 'a batch job');
    return job;
  }

  /**
   * The documented media download (`download/v1beta/files/…:download?alt=media`) read as a stream: the SDK's own
   * download only writes to a file path. The timeout covers the response headers, not the whole download.
   */
  private async download(ctx: CallContext, fileName: string): Promise<Response> {
    const url = `${this.baseUrl}/download/${API_VERSION}/${fileName}:download?alt=media`;
    return callProvider(ctx, async () => {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), this.timeoutMs);
      try {
        return await this.fetch(url, { headers: { 'x-goog-api-key': this.apiKey }, signal: controller.signal });
      } finally {
        clearTimeout(timer);
      }
    });
  }

  /**
   * One pass over the requests: the JSONL file (lines `{key, request}`) and, while it stays under the inline limit,
   * the same requests in the SDK's inline shape. Past the limit only the file is kept.
   */
  private async batchInput(
    requests: AsyncIterable<ProviderRequest> | Iterable<ProviderRequest>,
  ): Promise<{ count: number; jsonl: string[]; inline?: InlinedRequest[] }> {
    const limit = this.inlineLimitBytes;
    let inline: InlinedRequest[] | undefined = [];
    let bytes = 0;
    let count = 0;
    const provider = this.name;
    async function* lines(): AsyncGenerator<string> {
      for await (const { customId, params } of checkedRequests(provider, requests)) {
        const { model: _model, ...request } = params;
        const line = JSON.stringify({ key: customId, request });
        count += 1;
        bytes += Buffer.byteLength(line) + 1;
        if (bytes > limit) inline = undefined;
        inline?.push(inlinedRequest(customId, request));
        yield line;
      }
    }
    const jsonl: string[] = [];
    for await (const chunk of jsonlChunks(lines())) jsonl.push(chunk);
    return inline ? { count, jsonl: [], inline } : { count, jsonl };
  }

  private context(operation: string, target: string): CallContext {
    return { provider: this.name, operation, target, secrets: this.secrets };
  }
}

/** REST GenerateContentRequest fields → the SDK's InlinedRequest (generationConfig flattened into `config`). */
function inlinedRequest(key: string, request: Record<string, unknown>): InlinedRequest {
  const { contents, generationConfig, ...rest } = request;
  return {
    ...(contents !== undefined ? { contents: contents as ContentListUnion } : {}),
    metadata: { key },
    config: { ...asRecord(generationConfig), ...rest } as GenerateContentConfig,
  };
}

function toReport(job: BatchJob): ProviderStatusReport {
  const rawStatus = job.state ?? 'unknown';
  const status = normaliseStatus(rawStatus, STATUS_TABLE);
  // This SDK drops the API's batchStats, so counts come from the inlined responses once the job has them.
  const inlined = job.dest?.inlinedResponses ?? [];
  const errored = inlined.filter((response) => response.error).length;
  const report: ProviderStatusReport = {
    status,
    rawStatus,
    counts: makeCounts({ total: inlined.length, succeeded: inlined.length - errored, errored }),
    resultsAvailable: inlined.length > 0 || job.dest?.fileName !== undefined,
    resultFileIds: job.dest?.fileName ? [job.dest.fileName] : [],
  };
  if (status === 'failed') {
    report.failure = { code: 'batch_failed', message: job.error?.message ?? `Gemini reported the batch job as ${rawStatus}` };
  }
  return report;
}

function inlinedResultLine(response: InlinedResponse, position: number): ProviderResultLine {
  const key = str(response.metadata?.key);
  if (key === undefined) return { kind: 'malformed', lineNumber: position, errorMessage: 'inlined response has no metadata.key' };
  return mapResult(response as unknown as JsonRecord, key, position);
}

/** One result: `{response}` (a GenerateContentResponse) or `{error|status: {code, message, status}}`. */
function mapResult(record: JsonRecord, customId: string, lineNumber: number): ProviderResultLine {
  const error = asRecord(record.error) ?? asRecord(record.status);
  if (error) return rpcErrorLine(customId, error);
  const response = asRecord(record.response);
  if (!response) return { kind: 'malformed', customId, lineNumber, errorMessage: 'result has neither response nor error' };
  const usage = geminiUsage(response.usageMetadata);
  return { kind: 'succeeded', customId, result: record.response, ...(usage ? { usage } : {}) };
}

/** The SDK throws a plain Error on a malformed job name; an id we stored can never become valid by retrying. */
function checkBatchName(name: string, ctx: CallContext): void {
  if (!BATCH_NAME.test(name)) {
    throw new ProviderError(`${describeCall(ctx)}: not a Gemini batch job name (batches/…)`, {
      provider: ctx.provider,
      code: 'invalid_batch_id',
      retryable: false,
    });
  }
}

function requireName(value: { name?: string } | undefined, pattern: RegExp, ctx: CallContext, what: string): string {
  const name = str(value?.name);
  if (name === undefined || !pattern.test(name)) throw badResponse(ctx, `expected ${what} with a name`);
  return name;
}

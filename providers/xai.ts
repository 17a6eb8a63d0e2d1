/**
 * xAI Batch API adapter: the OpenAI batch JSONL uploaded to /v1/files (a lone `file` part), POST /v1/batches
 * `{name, input_file_id}`, GET /v1/batches/{id}, results paged with `pagination_token`, POST /v1/batches/{id}:cancel.
 * xAI batches have no status field: it is derived from the request counts, `cancel_time`, `cancel_by_xai_message`
 * (xAI rejected the batch) and `expire_time`, and `rawStatus` names the derivation.
 *
 * HTTP goes through the openai SDK's generic get/post (there is no xAI batch SDK for Node): bearer auth, timeouts,
 * read retries with retry-after, and the error classes classifyError already knows.
 */
import OpenAI from 'openai';
import { badResponse, callProvider, requireRecord, type CallContext } from './classify-error';
import { limitsFor, sdkOptions, type ClientOptions } from './client-options';
import type { ProviderLimits } from '../domain/provider-limits';
import { cancelOrReport, deleteEach, hasReadableResults } from './lifecycle';
import { asRecord, count, makeCounts, normaliseStatus, str, openaiUsage, type JsonRecord } from './normalise';
import { batchInputJsonl } from './openai';
import { rpcErrorLine } from './rpc-errors';
import { withUploadFile } from './upload-file';
import type { BatchProvider, DeleteFilesInput, ProviderBatchStatus, ProviderResultLine, ProviderStatusReport, SubmitInput, SubmitResult } from './types';

export interface XAIProviderOptions extends ClientOptions {
  /** Includes /v1. Default https://api.x.ai/v1. */
  baseURL?: string;
  /** Per-line url. Default '/v1/chat/completions'. */
  endpoint?: string;
  /** How many recent batches findExisting inspects before giving up. Default 500. */
  findExistingScanLimit?: number;
  /** Results per page. Default 1000. */
  resultsPageSize?: number;
}

const DEFAULT_BASE_URL = 'https://api.x.ai/v1';
const LIST_PAGE_SIZE = 100;

/** The derived rawStatus values (see deriveStatus). */
const STATUS_TABLE: Readonly<Record<string, ProviderBatchStatus>> = {
  validating: 'in_progress',
  in_progress: 'in_progress',
  cancelling: 'in_progress',
  completed: 'ended',
  cancelled: 'canceled',
  expired: 'expired',
  rejected_by_xai: 'failed',
};

/** The batch name that ties an xAI batch to our batch id (xAI batches carry no metadata). */
export function batchNameFor(batchId: string): string {
  return `batchkeeper-${batchId}`;
}

export class XAIBatchProvider implements BatchProvider {
  readonly name = 'xai';
  readonly limits: ProviderLimits;
  private readonly client: OpenAI;
  private readonly endpoint: string;
  private readonly scanLimit: number;
  private readonly pageSize: number;
  private readonly secrets: readonly string[];
  /** Set unless the options turn deletion off. xAI serves results as pages: the input file is the one file. */
  readonly deleteFiles?: (input: DeleteFilesInput) => Promise<{ deleted: number }>;

  constructor(options: XAIProviderOptions) {
    this.limits = limitsFor(this.name, options.limits);
    this.client = new OpenAI(sdkOptions({ ...options, baseURL: options.baseURL ?? DEFAULT_BASE_URL }));
    this.endpoint = options.endpoint ?? '/v1/chat/completions';
    this.scanLimit = options.findExistingScanLimit ?? 500;
    this.pageSize = options.resultsPageSize ?? 1000;
    this.secrets = [options.apiKey];
    if (options.deleteFiles !== false) {
      this.deleteFiles = ({ providerBatchId, inputFileId }) => {
        const ctx = this.context('deleteFiles', providerBatchId);
        return deleteEach(ctx, [inputFileId], (id) => this.client.delete(`/files/${encodeURIComponent(id)}`));
      };
    }
  }

  async submit({ batchId, model, requests, endpoint }: SubmitInput): Promise<SubmitResult> {
    const ctx = this.context('submit', batchId);
    // Written out before any HTTP call, so invalid input fails without leaving an orphan upload behind. A retried
    // upload only leaves an unused file behind, so the SDK may retry it.
    const file = await withUploadFile(batchInputJsonl(this.name, endpoint ?? this.endpoint, model, requests), `batchkeeper-${batchId}.jsonl`, async (upload) => {
      const form = new FormData();
      form.append('file', upload);
      return requireRecord(await callProvider(ctx, () => this.client.post('/files', { body: form })), ctx, 'a file object');
    });
    const fileId = str(file.id) ?? str(file.file_id);
    if (fileId === undefined) throw badResponse(ctx, 'expected a file object with an id');
    // maxRetries 0: a retried create could make a second batch; our retry layer calls findExisting first.
    const batch = await callProvider(ctx, () =>
      this.client.post('/batches', { body: { name: batchNameFor(batchId), input_file_id: fileId }, maxRetries: 0 }),
    );
    return { ...submitResult(batch, ctx), inputFileId: fileId };
  }

  async findExisting(batchId: string): Promise<SubmitResult | null> {
    const ctx = this.context('findExisting', batchId);
    const wanted = batchNameFor(batchId);
    let newest: JsonRecord | undefined;
    let scanned = 0;
    let token: string | undefined;
    // The list order is not documented, so every batch seen is compared and the newest match wins.
    do {
      const page = requireRecord(await callProvider(ctx, () => this.client.get('/batches', { query: pageQuery(LIST_PAGE_SIZE, token) })), ctx, 'a batch list');
      if (!Array.isArray(page.batches)) throw badResponse(ctx, 'batch list without batches');
      for (const item of page.batches) {
        const batch = asRecord(item);
        if (batch?.name === wanted && (!newest || createdAt(batch) > createdAt(newest))) newest = batch;
        if (++scanned >= this.scanLimit) break;
      }
      token = nextToken(page, token, ctx);
    } while (token !== undefined && scanned < this.scanLimit);
    return newest ? submitResult(newest, ctx) : null;
  }

  async getStatus(providerBatchId: string): Promise<ProviderStatusReport> {
    return toReport(await this.retrieve(this.context('getStatus', providerBatchId), providerBatchId));
  }

  async *streamResults(providerBatchId: string): AsyncGenerator<ProviderResultLine[]> {
    const ctx = this.context('streamResults', providerBatchId);
    if (!hasReadableResults(toReport(await this.retrieve(ctx, providerBatchId)), ctx)) return;
    const path = `/batches/${encodeURIComponent(providerBatchId)}/results`;
    let position = 0;
    let token: string | undefined;
    do {
      const page = requireRecord(await callProvider(ctx, () => this.client.get(path, { query: pageQuery(this.pageSize, token) })), ctx, 'a results page');
      if (!Array.isArray(page.results)) throw badResponse(ctx, 'results page without results');
      if (page.results.length > 0) yield page.results.map((entry) => mapResult(entry, ++position));
      token = nextToken(page, token, ctx);
    } while (token !== undefined);
  }

  async cancel(providerBatchId: string): Promise<ProviderStatusReport> {
    const ctx = this.context('cancel', providerBatchId);
    return cancelOrReport(
      async () => {
        const body = asRecord(await callProvider(ctx, () => this.client.post(`/batches/${encodeURIComponent(providerBatchId)}:cancel`)));
        // The reply is the batch; should it ever be empty, the batch is read instead.
        return body && batchIdOf(body) ? toReport(body) : this.getStatus(providerBatchId);
      },
      () => this.getStatus(providerBatchId),
    );
  }

  private async retrieve(ctx: CallContext, providerBatchId: string): Promise<JsonRecord> {
    const batch = requireRecord(await callProvider(ctx, () => this.client.get(`/batches/${encodeURIComponent(providerBatchId)}`)), ctx, 'a batch object');
    if (batchIdOf(batch) === undefined) throw badResponse(ctx, 'expected a batch object with a batch_id');
    return batch;
  }

  private context(operation: string, target: string): CallContext {
    return { provider: this.name, operation, target, secrets: this.secrets };
  }
}

function submitResult(value: unknown, ctx: CallContext): SubmitResult {
  const batch = requireRecord(value, ctx, 'a batch object');
  const providerBatchId = batchIdOf(batch);
  if (providerBatchId === undefined) throw badResponse(ctx, 'expected a batch object with a batch_id');
  return { providerBatchId, report: toReport(batch) };
}

function toReport(batch: JsonRecord, now = Date.now()): ProviderStatusReport {
  const state = asRecord(batch.state);
  const pending = count(state?.num_pending);
  const succeeded = count(state?.num_success);
  const errored = count(state?.num_error);
  const canceled = count(state?.num_cancelled);
  const rawStatus = deriveStatus(batch, now);
  const status = normaliseStatus(rawStatus, STATUS_TABLE);
  const report: ProviderStatusReport = {
    status,
    rawStatus,
    counts: makeCounts({
      total: count(state?.num_requests),
      processing: status === 'in_progress' ? pending : 0,
      succeeded,
      errored,
      canceled,
      expired: status === 'expired' ? pending : 0,
    }),
    resultsAvailable: status !== 'in_progress' && succeeded + errored + canceled > 0,
  };
  const rejection = str(batch.cancel_by_xai_message);
  if (rejection !== undefined) report.failure = { code: 'rejected_by_xai', message: rejection };
  return report;
}

/**
 * xAI reports counts, not a status: rejected by xAI (cancel_by_xai_message) → failed; cancelled with nothing
 * pending → cancelled; past expire_time with requests pending → expired; cancel requested → cancelling; no requests
 * counted yet (the file is still being read) → validating; requests pending → in_progress; otherwise completed (or
 * cancelled when some requests were).
 */
function deriveStatus(batch: JsonRecord, now: number): string {
  const state = asRecord(batch.state);
  const total = count(state?.num_requests);
  const pending = count(state?.num_pending);
  const cancelRequested = str(batch.cancel_time) !== undefined;
  if (str(batch.cancel_by_xai_message) !== undefined) return 'rejected_by_xai';
  if (cancelRequested && pending === 0) return 'cancelled';
  if (pending > 0 && Date.parse(str(batch.expire_time) ?? '') <= now) return 'expired';
  if (cancelRequested) return 'cancelling';
  if (total === 0) return 'validating';
  if (pending > 0) return 'in_progress';
  return count(state?.num_cancelled) > 0 ? 'cancelled' : 'completed';
}

/** One results entry: `{batch_request_id, batch_result: {response: {chat_get_completion}} | {error}, error_message?}`. */
function mapResult(entry: unknown, position: number): ProviderResultLine {
  const record = asRecord(entry);
  const customId = str(record?.batch_request_id);
  if (!record || customId === undefined) return { kind: 'malformed', lineNumber: position, errorMessage: 'result has no batch_request_id' };
  const batchResult = asRecord(record.batch_result);
  const error = asRecord(batchResult?.error) ?? asRecord(record.error);
  const errorMessage = str(record.error_message);
  // An error object with code 0 (OK) and no message is no error.
  const errorCode = error?.code;
  const failed = errorMessage !== undefined || (error !== undefined && errorCode !== 0 && errorCode !== '0' && (errorCode != null || str(error.message) !== undefined));
  if (failed) return rpcErrorLine(customId, error ?? {}, errorMessage);
  const completion = asRecord(asRecord(batchResult?.response)?.chat_get_completion);
  if (!completion) return { kind: 'malformed', customId, lineNumber: position, errorMessage: 'result has neither a completion nor an error' };
  const usage = openaiUsage(completion.usage);
  return { kind: 'succeeded', customId, result: completion, ...(usage ? { usage } : {}) };
}

function batchIdOf(batch: JsonRecord): string | undefined {
  return str(batch.batch_id) ?? str(batch.id);
}

function createdAt(batch: JsonRecord): number {
  return Date.parse(str(batch.create_time) ?? '') || 0;
}

function pageQuery(limit: number, token: string | undefined): Record<string, string | number> {
  return token === undefined ? { limit } : { limit, pagination_token: token };
}

/** The next page's token; a token handed back unchanged would loop forever. */
function nextToken(page: JsonRecord, previous: string | undefined, ctx: CallContext): string | undefined {
  const token = str(page.pagination_token);
  if (token !== undefined && token === previous) throw badResponse(ctx, 'the same pagination_token twice');
  return token;
}

/**
 * The Gemini API batch endpoints `@google/genai` calls (baseUrl = server url; paths carry /v1beta): batch create
 * (inline requests or an uploaded JSONL file), get, list, cancel, the resumable Files API upload, and the media
 * download of a responses file.
 */
import { randomBytes } from 'node:crypto';
import { batchOfResponsesFile, batchOperation, fileObject, geminiResponsesFiles, responsesFileLines } from './gemini-format';
import { storeInputFile } from './input-file';
import { tokenPage } from './pages';
import { FakeHttpError, json, type Reply, type RequestContext, type Route } from './router';
import { nameMetadata, type FakeBatch, type FakeRequest, type FakeState, type ValidationError } from './state';

/** The API refuses inline requests past 20 MB (larger batches go through the Files API). */
const MAX_INLINE_BYTES = 20 * 1024 * 1024;
const PAGE_SIZES = { size: 50, max: 1000 };

interface PendingUpload {
  chunks: Buffer[];
  displayName: string;
}

export function geminiRoutes(state: FakeState): Route[] {
  const uploads = new Map<string, PendingUpload>();
  const batchOr404 = (id: string | undefined): FakeBatch => {
    const batch = id ? state.getBatch(`batches/${id}`) : undefined;
    if (!batch || batch.provider !== 'gemini') throw new FakeHttpError(404, 'NOT_FOUND', `Batch batches/${id} not found.`);
    return batch;
  };
  const render = (batch: FakeBatch) => batchOperation(state, batch, state.snapshot(batch));
  const batchId = (params: Record<string, string>) => `batches/${params.id}`;

  return [
    {
      name: 'gemini.files.upload',
      provider: 'gemini',
      method: 'POST',
      pattern: /^\/upload\/v1beta\/files\/?$/,
      handle: (ctx) => resumableUpload(state, uploads, ctx),
    },
    {
      name: 'gemini.batches.create',
      provider: 'gemini',
      method: 'POST',
      pattern: /^\/v1beta\/models\/(?<model>[^/:]+):batchGenerateContent$/,
      handle: async (ctx) => {
        const raw = await ctx.body();
        const batch = ((await ctx.json()) as { batch?: { displayName?: unknown; inputConfig?: Record<string, unknown> } } | undefined)?.batch;
        const input = batchInput(state, batch?.inputConfig, raw.length);
        const created = state.createBatch({
          provider: 'gemini',
          model: ctx.params.model!,
          requests: input.requests,
          metadata: nameMetadata(typeof batch?.displayName === 'string' ? batch.displayName : undefined),
          inputFileId: input.fileId,
          validationErrors: input.errors,
        });
        if (created === 'rejected') throw new FakeHttpError(400, 'INVALID_ARGUMENT', 'Batch rejected (simulated).');
        if (created === 'queue_limited') {
          throw new FakeHttpError(429, 'RESOURCE_EXHAUSTED', `Batch enqueued tokens quota exceeded for model ${ctx.params.model}. Try again once running batch jobs finish.`);
        }
        return json(render(created));
      },
    },
    {
      name: 'gemini.batches.retrieve',
      provider: 'gemini',
      method: 'GET',
      pattern: /^\/v1beta\/batches\/(?<id>[^/:]+)$/,
      batchId,
      counter: 'retrieve',
      handle: ({ params }) => json(render(batchOr404(params.id))),
    },
    {
      name: 'gemini.batches.list',
      provider: 'gemini',
      method: 'GET',
      pattern: /^\/v1beta\/batches$/,
      handle: ({ url }) => {
        const page = tokenPage(state.listBatches('gemini'), url.searchParams.get('pageToken'), url.searchParams.get('pageSize'), PAGE_SIZES);
        return json({ operations: page.items.map(render), ...(page.next ? { nextPageToken: page.next } : {}) });
      },
    },
    {
      name: 'gemini.batches.cancel',
      provider: 'gemini',
      method: 'POST',
      pattern: /^\/v1beta\/batches\/(?<id>[^/:]+):cancel$/,
      batchId,
      counter: 'cancel',
      handle: ({ params }) => {
        const batch = batchOr404(params.id);
        if (!state.cancel(batch)) throw new FakeHttpError(400, 'FAILED_PRECONDITION', `Batch ${batch.id} is already in a terminal state.`);
        return json({});
      },
    },
    {
      name: 'gemini.files.download',
      provider: 'gemini',
      method: 'GET',
      pattern: /^\/(?:download\/)?v1beta\/files\/(?<id>[^/:]+):download$/,
      batchId: (params) => batchOfResponsesFile(params.id!),
      counter: 'results',
      handle: ({ params }) => {
        const id = batchOfResponsesFile(params.id!);
        const batch = id ? state.getBatch(id) : undefined;
        const current = batch ? state.snapshot(batch) : undefined;
        if (!batch || !current?.terminal || !batch.inputFileId || state.isDeleted(`files/${params.id}`)) {
          throw new FakeHttpError(404, 'NOT_FOUND', `File files/${params.id} not found.`);
        }
        const lines = state.resultFile(batch, current, 'responses', () => responsesFileLines(state, batch, current));
        return { kind: 'lines', status: 200, lines, contentType: 'application/octet-stream' };
      },
    },
    {
      name: 'gemini.files.delete',
      provider: 'gemini',
      method: 'DELETE',
      pattern: /^\/v1beta\/files\/(?<id>[^/:]+)$/,
      handle: ({ params }) => {
        const name = `files/${params.id}`;
        const input = state.getFile(name);
        const output = batchOfResponsesFile(params.id!);
        const batch = output ? state.getBatch(output) : undefined;
        const liveOutput = batch && !state.isDeleted(name) && geminiResponsesFiles(state, batch).includes(name);
        if (!(input?.provider === 'gemini') && !liveOutput) throw new FakeHttpError(404, 'NOT_FOUND', `File ${name} not found.`);
        state.markDeleted('gemini', name);
        return json({});
      },
    },
  ];
}

/** `inputConfig`: `{requests: {requests: [{request, metadata: {key}}]}}` inline, or `{fileName}` of an upload. */
function batchInput(
  state: FakeState,
  inputConfig: Record<string, unknown> | undefined,
  bodyBytes: number,
): { requests: FakeRequest[]; fileId: string | null; errors: ValidationError[] } {
  if (typeof inputConfig?.fileName === 'string') {
    const file = state.getFile(inputConfig.fileName);
    if (!file) throw new FakeHttpError(400, 'INVALID_ARGUMENT', `File ${inputConfig.fileName} does not exist.`);
    return { requests: file.requests, fileId: file.id, errors: file.parseErrors };
  }
  const inline = (inputConfig?.requests as { requests?: unknown } | undefined)?.requests;
  if (!Array.isArray(inline) || inline.length === 0) throw new FakeHttpError(400, 'INVALID_ARGUMENT', 'batch.input_config: requests or file_name is required.');
  if (bodyBytes > MAX_INLINE_BYTES) throw new FakeHttpError(400, 'INVALID_ARGUMENT', 'Request payload size exceeds the limit: 20971520 bytes.');
  const seen = new Set<string>();
  const requests = inline.map((item: unknown, index): FakeRequest => {
    const { request, metadata } = (item ?? {}) as { request?: unknown; metadata?: { key?: unknown } };
    const key = metadata?.key;
    if (typeof key !== 'string' || key === '' || seen.has(key)) {
      throw new FakeHttpError(400, 'INVALID_ARGUMENT', `batch.input_config.requests.requests[${index}].metadata.key must be a unique non-empty string.`);
    }
    seen.add(key);
    if (typeof request !== 'object' || request === null) throw new FakeHttpError(400, 'INVALID_ARGUMENT', `requests[${index}].request is required.`);
    return { customId: key, params: request as Record<string, unknown> };
  });
  return { requests, fileId: null, errors: [] };
}

/**
 * The resumable upload protocol: `X-Goog-Upload-Command: start` answers with an upload URL, then chunks are posted
 * to it (`upload`, the last one `upload, finalize`), and the final answer is `{file}`.
 */
async function resumableUpload(state: FakeState, uploads: Map<string, PendingUpload>, ctx: RequestContext): Promise<Reply> {
  const command = String(ctx.req.headers['x-goog-upload-command'] ?? '').toLowerCase();
  if (command === 'start') {
    const body = (await ctx.json()) as { file?: { displayName?: unknown } } | undefined;
    const uploadId = randomBytes(8).toString('hex');
    uploads.set(uploadId, { chunks: [], displayName: typeof body?.file?.displayName === 'string' ? body.file.displayName : 'upload.jsonl' });
    const headers = { 'x-goog-upload-url': `${ctx.origin}/upload/v1beta/files?upload_id=${uploadId}`, 'x-goog-upload-status': 'active' };
    return { kind: 'json', status: 200, body: {}, headers };
  }
  const uploadId = ctx.url.searchParams.get('upload_id') ?? '';
  const pending = uploads.get(uploadId);
  if (!pending) throw new FakeHttpError(404, 'NOT_FOUND', 'Unknown upload id.');
  pending.chunks.push(await ctx.body());
  if (!command.includes('finalize')) return { kind: 'json', status: 200, body: {}, headers: { 'x-goog-upload-status': 'active' } };
  uploads.delete(uploadId);
  const file = storeInputFile(state, {
    id: `files/${randomBytes(8).toString('hex')}`,
    data: Buffer.concat(pending.chunks),
    filename: pending.displayName,
    purpose: 'batch',
    provider: 'gemini',
    fields: { id: 'key', body: 'request' },
  });
  return { kind: 'json', status: 200, body: { file: fileObject(file) }, headers: { 'x-goog-upload-status': 'final' } };
}

/**
 * The OpenAI Files + Batch endpoints the official SDK calls (baseURL = server url + '/v1'), and the same endpoints
 * for each OpenAI-compatible variant under its own prefix (openai-variants.ts).
 */
import { OPENAI_LINE, storeInputFile, uploadedFilePart } from './input-file';
import { batchObject, fileObject, parseResultFileId, resultFiles, resultLines } from './openai-format';
import { OPENAI, type OpenAIVariant } from './openai-variants';
import { FakeHttpError, json, type Route } from './router';
import type { FakeBatch, FakeState, ValidationError } from './state';

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

export function openaiRoutes(state: FakeState, variant: OpenAIVariant = OPENAI): Route[] {
  const batchOr404 = (id: string | undefined): FakeBatch => {
    const batch = id ? state.getBatch(id) : undefined;
    if (!batch || batch.provider !== variant.name) throw new FakeHttpError(404, 'invalid_request_error', `No batch found with id '${id}'.`);
    return batch;
  };
  const render = (batch: FakeBatch) => batchObject(state, batch, state.snapshot(batch), variant.status);
  const prefix = variant.prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const path = (rest: string) => new RegExp(`^${prefix}${rest}$`);

  const routes: Route[] = [
    {
      name: `${variant.name}.files.create`,
      provider: 'openai',
      method: 'POST',
      pattern: path('/files'),
      handle: async (ctx) => {
        const upload = uploadedFilePart(ctx, await ctx.body(), true);
        return json(fileObject(storeInputFile(state, { ...upload, fields: OPENAI_LINE, provider: variant.name })));
      },
    },
    {
      name: `${variant.name}.files.retrieve`,
      provider: 'openai',
      method: 'GET',
      pattern: path('/files/(?<id>[^/]+)'),
      handle: ({ params }) => {
        const input = ownFile(state, params.id!, variant);
        if (input) return json(fileObject(input));
        const { batch } = resultFileOr404(state, params.id!, variant);
        return json(fileObject({ id: params.id!, bytes: 0, createdAt: Date.now(), filename: `${batch.id}_results.jsonl`, purpose: 'batch_output' }));
      },
    },
    {
      name: `${variant.name}.files.content`,
      provider: 'openai',
      method: 'GET',
      pattern: path('/files/(?<id>[^/]+)/content'),
      batchId: (params) => parseResultFileId(params.id!)?.batchId,
      counter: 'results',
      handle: ({ params }) => {
        const input = ownFile(state, params.id!, variant);
        if (input) return { kind: 'raw', status: 200, data: input.content, contentType: 'application/octet-stream' };
        const { batch, kind } = resultFileOr404(state, params.id!, variant);
        const current = state.snapshot(batch);
        const lines = state.resultFile(batch, current, kind, () => resultLines(state, batch, current, kind));
        return { kind: 'lines', status: 200, lines, contentType: 'application/octet-stream' };
      },
    },
    {
      name: `${variant.name}.files.delete`,
      provider: 'openai',
      method: 'DELETE',
      pattern: path('/files/(?<id>[^/]+)'),
      handle: ({ params }) => {
        const id = params.id!;
        if (!ownFile(state, id, variant)) resultFileOr404(state, id, variant);
        state.markDeleted(variant.name, id);
        return json({ id, object: 'file', deleted: true });
      },
    },
    {
      name: `${variant.name}.batches.create`,
      provider: 'openai',
      method: 'POST',
      pattern: path('/batches'),
      handle: async (ctx) => {
        const body = ((await ctx.json()) ?? {}) as Record<string, unknown>;
        const file = typeof body.input_file_id === 'string' ? state.getFile(body.input_file_id) : undefined;
        if (!file) throw new FakeHttpError(400, 'invalid_request_error', 'Invalid input_file_id: no such file.', 'invalid_value');
        if (typeof body.endpoint !== 'string') throw new FakeHttpError(400, 'invalid_request_error', 'Missing required parameter: endpoint.', 'missing_required_parameter');
        if (typeof body.completion_window !== 'string' || !variant.completionWindows.includes(body.completion_window)) {
          throw new FakeHttpError(400, 'invalid_request_error', `completion_window must be one of ${variant.completionWindows.join(', ')}.`, 'invalid_value');
        }
        const created = state.createBatch({
          provider: variant.name,
          model: file.model,
          requests: file.requests,
          metadata: stringRecord(body.metadata),
          endpoint: body.endpoint,
          completionWindow: body.completion_window,
          inputFileId: file.id,
          outputExpiresAfter: outputExpiresAfter(body.output_expires_after),
          validationErrors: [...file.parseErrors, ...endpointErrors(file, body.endpoint)],
        });
        if (created === 'rejected' || created === 'queue_limited') throw new FakeHttpError(400, 'invalid_request_error', 'Batch rejected (simulated).', 'invalid_request');
        return json(render(created));
      },
    },
    {
      name: `${variant.name}.batches.retrieve`,
      provider: 'openai',
      method: 'GET',
      pattern: path('/batches/(?<id>[^/]+)'),
      batchId: (params) => params.id,
      counter: 'retrieve',
      handle: ({ params }) => json(render(batchOr404(params.id))),
    },
    {
      name: `${variant.name}.batches.list`,
      provider: 'openai',
      method: 'GET',
      pattern: path('/batches'),
      handle: ({ url }) => {
        const all = state.listBatches(variant.name);
        const after = url.searchParams.get('after');
        const start = after ? all.findIndex((batch) => batch.id === after) + 1 : 0;
        const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(url.searchParams.get('limit')) || DEFAULT_PAGE_SIZE));
        const page = after && start === 0 ? [] : all.slice(start, start + limit);
        return json({
          object: 'list',
          data: page.map(render),
          first_id: page[0]?.id ?? null,
          last_id: page[page.length - 1]?.id ?? null,
          has_more: start + page.length < all.length && page.length > 0,
        });
      },
    },
    {
      name: `${variant.name}.batches.cancel`,
      provider: 'openai',
      method: 'POST',
      pattern: path('/batches/(?<id>[^/]+)/cancel'),
      batchId: (params) => params.id,
      counter: 'cancel',
      handle: ({ params }) => {
        const batch = batchOr404(params.id);
        if (!state.cancel(batch)) {
          const status = state.snapshot(batch).phase;
          throw new FakeHttpError(400, 'invalid_request_error', `Cannot cancel a batch with status '${status}'.`);
        }
        return json(render(batch));
      },
    },
  ];
  const check = variant.check;
  return check ? routes.map((route) => ({ ...route, handle: (ctx) => (check(ctx), route.handle(ctx)) })) : routes;
}

/** An uploaded file of this variant that was not deleted. */
function ownFile(state: FakeState, fileId: string, variant: OpenAIVariant) {
  const file = state.getFile(fileId);
  return file?.provider === variant.name ? file : undefined;
}

function outputExpiresAfter(value: unknown): { anchor: string; seconds: number } | null {
  if (value === undefined || value === null) return null;
  const { anchor, seconds } = value as { anchor?: unknown; seconds?: unknown };
  if (anchor !== 'created_at' || typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 3600 || seconds > 2_592_000) {
    throw new FakeHttpError(400, 'invalid_request_error', 'output_expires_after needs anchor created_at and seconds from 3600 to 2592000.', 'invalid_value');
  }
  return { anchor, seconds };
}

function resultFileOr404(state: FakeState, fileId: string, variant: OpenAIVariant) {
  const parsed = parseResultFileId(fileId);
  const batch = parsed ? state.getBatch(parsed.batchId) : undefined;
  if (!parsed || !batch || batch.provider !== variant.name || state.isDeleted(fileId) || !resultFiles(state, batch, state.snapshot(batch)).has(parsed.kind)) {
    throw new FakeHttpError(404, 'invalid_request_error', `No such File object: ${fileId}`);
  }
  return { batch, kind: parsed.kind };
}

function endpointErrors(file: { urls: string[] }, endpoint: string): ValidationError[] {
  return file.urls.every((url) => url === endpoint)
    ? []
    : [{ code: 'mismatched_endpoint', message: `Every line's url must equal the batch endpoint ${endpoint}.`, line: null }];
}

function stringRecord(value: unknown): Record<string, string> | null {
  if (typeof value !== 'object' || value === null) return null;
  const entries = Object.entries(value).filter((entry): entry is [string, string] => typeof entry[1] === 'string');
  return Object.fromEntries(entries);
}

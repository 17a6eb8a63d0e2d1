/** The OpenAI Files + Batch endpoints the official SDK calls (baseURL = server url + '/v1'). */
import { randomBytes } from 'node:crypto';
import { parseMultipart } from './multipart';
import { batchObject, fileObject, parseResultFileId, resultFiles, resultLines } from './openai-format';
import { FakeHttpError, json, type RequestContext, type Route } from './router';
import type { FakeBatch, FakeRequest, FakeState, ValidationError } from './state';

const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 100;

export function openaiRoutes(state: FakeState): Route[] {
  const batchOr404 = (id: string | undefined): FakeBatch => {
    const batch = id ? state.getBatch(id) : undefined;
    if (!batch || batch.provider !== 'openai') throw new FakeHttpError(404, 'invalid_request_error', `No batch found with id '${id}'.`);
    return batch;
  };
  const render = (batch: FakeBatch) => batchObject(state, batch, state.snapshot(batch));

  return [
    {
      name: 'openai.files.create',
      provider: 'openai',
      method: 'POST',
      pattern: /^\/v1\/files$/,
      handle: async (ctx) => json(fileObject(uploadFile(state, ctx, await ctx.body()))),
    },
    {
      name: 'openai.files.retrieve',
      provider: 'openai',
      method: 'GET',
      pattern: /^\/v1\/files\/(?<id>[^/]+)$/,
      handle: ({ params }) => {
        const input = state.getFile(params.id!);
        if (input) return json(fileObject(input));
        const { batch } = resultFileOr404(state, params.id!);
        return json(fileObject({ id: params.id!, bytes: 0, createdAt: Date.now(), filename: `${batch.id}_results.jsonl`, purpose: 'batch_output' }));
      },
    },
    {
      name: 'openai.files.content',
      provider: 'openai',
      method: 'GET',
      pattern: /^\/v1\/files\/(?<id>[^/]+)\/content$/,
      batchId: (params) => parseResultFileId(params.id!)?.batchId,
      counter: 'results',
      handle: ({ params }) => {
        const input = state.getFile(params.id!);
        if (input) return { kind: 'raw', status: 200, data: input.content, contentType: 'application/octet-stream' };
        const { batch, kind } = resultFileOr404(state, params.id!);
        const lines = resultLines(state, batch, state.snapshot(batch), kind);
        return { kind: 'lines', status: 200, lines, contentType: 'application/octet-stream' };
      },
    },
    {
      name: 'openai.batches.create',
      provider: 'openai',
      method: 'POST',
      pattern: /^\/v1\/batches$/,
      handle: async (ctx) => {
        const body = ((await ctx.json()) ?? {}) as Record<string, unknown>;
        const file = typeof body.input_file_id === 'string' ? state.getFile(body.input_file_id) : undefined;
        if (!file) throw new FakeHttpError(400, 'invalid_request_error', 'Invalid input_file_id: no such file.', 'invalid_value');
        if (typeof body.endpoint !== 'string') throw new FakeHttpError(400, 'invalid_request_error', 'Missing required parameter: endpoint.', 'missing_required_parameter');
        if (body.completion_window !== '24h') throw new FakeHttpError(400, 'invalid_request_error', "completion_window must be '24h'.", 'invalid_value');
        const created = state.createBatch({
          provider: 'openai',
          model: file.model,
          requests: file.requests,
          metadata: stringRecord(body.metadata),
          endpoint: body.endpoint,
          completionWindow: body.completion_window,
          inputFileId: file.id,
          validationErrors: [...file.parseErrors, ...endpointErrors(file, body.endpoint)],
        });
        if (created === 'rejected') throw new FakeHttpError(400, 'invalid_request_error', 'Batch rejected (simulated).', 'invalid_request');
        return json(render(created));
      },
    },
    {
      name: 'openai.batches.retrieve',
      provider: 'openai',
      method: 'GET',
      pattern: /^\/v1\/batches\/(?<id>[^/]+)$/,
      batchId: (params) => params.id,
      counter: 'retrieve',
      handle: ({ params }) => json(render(batchOr404(params.id))),
    },
    {
      name: 'openai.batches.list',
      provider: 'openai',
      method: 'GET',
      pattern: /^\/v1\/batches$/,
      handle: ({ url }) => {
        const all = state.listBatches('openai');
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
      name: 'openai.batches.cancel',
      provider: 'openai',
      method: 'POST',
      pattern: /^\/v1\/batches\/(?<id>[^/]+)\/cancel$/,
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
}

function resultFileOr404(state: FakeState, fileId: string) {
  const parsed = parseResultFileId(fileId);
  const batch = parsed ? state.getBatch(parsed.batchId) : undefined;
  if (!parsed || !batch || !resultFiles(state, batch, state.snapshot(batch)).has(parsed.kind)) {
    throw new FakeHttpError(404, 'invalid_request_error', `No such File object: ${fileId}`);
  }
  return { batch, kind: parsed.kind };
}

/** Stores an uploaded batch input file; bad lines are remembered and fail the batch at validation, as on OpenAI. */
function uploadFile(state: FakeState, ctx: RequestContext, body: Buffer) {
  const parts = parseMultipart(body, ctx.req.headers['content-type'] ?? '');
  const filePart = parts.find((part) => part.name === 'file');
  const purpose = parts.find((part) => part.name === 'purpose')?.data.toString('utf8');
  if (!filePart) throw new FakeHttpError(400, 'invalid_request_error', 'Missing required parameter: file.', 'missing_required_parameter');
  if (!purpose) throw new FakeHttpError(400, 'invalid_request_error', 'Missing required parameter: purpose.', 'missing_required_parameter');
  const { requests, urls, model, errors } = parseInputJsonl(filePart.data);
  const file = {
    id: `file-${randomBytes(12).toString('hex')}`,
    filename: filePart.filename ?? 'upload.jsonl',
    purpose,
    bytes: filePart.data.length,
    createdAt: Date.now(),
    content: filePart.data,
    requests,
    urls,
    model,
    parseErrors: errors,
  };
  state.addFile(file);
  return file;
}

interface InputLine {
  custom_id?: unknown;
  url?: unknown;
  body?: { model?: unknown } & Record<string, unknown>;
}

function parseInputJsonl(data: Buffer): { requests: FakeRequest[]; urls: string[]; model: string; errors: ValidationError[] } {
  const requests: FakeRequest[] = [];
  const urls = new Set<string>();
  const errors: ValidationError[] = [];
  const seen = new Set<string>();
  let model = '';
  data
    .toString('utf8')
    .split('\n')
    .forEach((text, index) => {
      if (text.trim() === '') return;
      const line = index + 1;
      let parsed: InputLine;
      try {
        parsed = JSON.parse(text) as InputLine;
      } catch {
        errors.push({ code: 'invalid_json_line', message: `Line ${line} is not valid JSON.`, line });
        return;
      }
      const customId = parsed.custom_id;
      if (typeof customId !== 'string' || !parsed.body || typeof parsed.body !== 'object') {
        errors.push({ code: 'invalid_request', message: `Line ${line} needs custom_id and body.`, line });
        return;
      }
      if (seen.has(customId)) errors.push({ code: 'duplicate_custom_id', message: `Duplicate custom_id '${customId}'.`, line });
      seen.add(customId);
      const { model: lineModel, ...params } = parsed.body;
      if (typeof lineModel === 'string') {
        if (model && lineModel !== model) errors.push({ code: 'mismatched_model', message: 'All lines must use the same model.', line });
        model ||= lineModel;
      }
      urls.add(typeof parsed.url === 'string' ? parsed.url : '');
      requests.push({ customId, params });
    });
  if (requests.length === 0 && errors.length === 0) errors.push({ code: 'empty_file', message: 'The input file is empty.', line: null });
  return { requests, urls: [...urls], model, errors };
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

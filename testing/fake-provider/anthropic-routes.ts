/** The Message Batches endpoints the official Anthropic SDK calls (baseURL = server url, paths carry /v1). */
import { batchObject, resultLines } from './anthropic-format';
import { FakeHttpError, json, type Route } from './router';
import type { FakeBatch, FakeRequest, FakeState } from './state';

const CUSTOM_ID = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_REQUESTS = 100_000;
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 1000;

export function anthropicRoutes(state: FakeState): Route[] {
  const batchOr404 = (id: string | undefined): FakeBatch => {
    const batch = id ? state.getBatch(id) : undefined;
    if (!batch || batch.provider !== 'anthropic') throw new FakeHttpError(404, 'not_found_error', 'Message batch not found.');
    return batch;
  };
  const render = (batch: FakeBatch, origin: string) => batchObject(state, batch, state.snapshot(batch), origin);

  return [
    {
      name: 'anthropic.batches.create',
      provider: 'anthropic',
      method: 'POST',
      pattern: /^\/v1\/messages\/batches$/,
      handle: async (ctx) => {
        const { requests, model } = validateCreate(await ctx.json());
        const created = state.createBatch({ provider: 'anthropic', model, requests });
        if (created === 'rejected') throw new FakeHttpError(400, 'invalid_request_error', 'Batch rejected (simulated).');
        if (created === 'queue_limited') {
          throw new FakeHttpError(429, 'rate_limit_error', 'Your organization has reached its limit of message batch requests in the processing queue. Please try again once some batches have ended.');
        }
        return json(render(created, ctx.origin));
      },
    },
    {
      name: 'anthropic.batches.retrieve',
      provider: 'anthropic',
      method: 'GET',
      pattern: /^\/v1\/messages\/batches\/(?<id>[^/]+)$/,
      batchId: (params) => params.id,
      counter: 'retrieve',
      handle: ({ params, origin }) => json(render(batchOr404(params.id), origin)),
    },
    {
      name: 'anthropic.batches.list',
      provider: 'anthropic',
      method: 'GET',
      pattern: /^\/v1\/messages\/batches$/,
      handle: ({ url, origin }) => {
        const all = state.listBatches('anthropic');
        const limit = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(url.searchParams.get('limit')) || DEFAULT_PAGE_SIZE));
        const afterId = url.searchParams.get('after_id');
        const beforeId = url.searchParams.get('before_id');
        // Newest first: after_id pages towards older batches, before_id towards newer ones.
        let start = 0;
        let end = all.length;
        if (afterId) start = all.findIndex((batch) => batch.id === afterId) + 1 || all.length;
        if (beforeId) end = Math.max(0, all.findIndex((batch) => batch.id === beforeId));
        const page = beforeId ? all.slice(Math.max(start, end - limit), end) : all.slice(start, Math.min(end, start + limit));
        const hasMore = beforeId ? end - limit > start : start + limit < end;
        return json({ data: page.map((batch) => render(batch, origin)), has_more: hasMore, first_id: page[0]?.id ?? null, last_id: page[page.length - 1]?.id ?? null });
      },
    },
    {
      name: 'anthropic.batches.cancel',
      provider: 'anthropic',
      method: 'POST',
      pattern: /^\/v1\/messages\/batches\/(?<id>[^/]+)\/cancel$/,
      batchId: (params) => params.id,
      counter: 'cancel',
      handle: ({ params, origin }) => {
        const batch = batchOr404(params.id);
        // Cancelling an ended batch is a no-op that returns the batch, not an error.
        state.cancel(batch);
        return json(render(batch, origin));
      },
    },
    {
      name: 'anthropic.batches.results',
      provider: 'anthropic',
      method: 'GET',
      pattern: /^\/v1\/messages\/batches\/(?<id>[^/]+)\/results$/,
      batchId: (params) => params.id,
      counter: 'results',
      handle: ({ params }) => {
        const batch = batchOr404(params.id);
        const current = state.snapshot(batch);
        if (!current.terminal) throw new FakeHttpError(400, 'invalid_request_error', 'Message batch has not ended; results are not available yet.');
        const lines = state.resultFile(batch, current, 'results', () => resultLines(state, batch, current));
        return { kind: 'lines', status: 200, lines, contentType: 'application/binary' };
      },
    },
  ];
}

function validateCreate(body: unknown): { requests: FakeRequest[]; model: string } {
  const raw = (body as { requests?: unknown } | null)?.requests;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_REQUESTS) {
    throw new FakeHttpError(400, 'invalid_request_error', `requests: must contain 1 to ${MAX_REQUESTS} items`);
  }
  const seen = new Set<string>();
  let model = '';
  const requests = raw.map((item: unknown, index): FakeRequest => {
    const { custom_id: customId, params } = (item ?? {}) as { custom_id?: unknown; params?: unknown };
    if (typeof customId !== 'string' || !CUSTOM_ID.test(customId)) {
      throw new FakeHttpError(400, 'invalid_request_error', `requests.${index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
    }
    if (seen.has(customId)) throw new FakeHttpError(400, 'invalid_request_error', `requests.${index}.custom_id: duplicate custom_id`);
    seen.add(customId);
    if (typeof params !== 'object' || params === null) throw new FakeHttpError(400, 'invalid_request_error', `requests.${index}.params: field required`);
    const { model: requestModel, ...rest } = params as Record<string, unknown>;
    if (typeof requestModel === 'string') model ||= requestModel;
    return { customId, params: rest };
  });
  return { requests, model };
}

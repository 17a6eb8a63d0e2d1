/** xAI's Files and Batch REST endpoints, served under /xai/v1 (the adapter's baseURL is configurable). */
import { OPENAI_LINE, storeInputFile, uploadedFilePart } from './input-file';
import { fileObject } from './openai-format';
import { tokenPage } from './pages';
import { FakeHttpError, json, type Route } from './router';
import { nameMetadata, type FakeBatch, type FakeState } from './state';
import { batchObject, resultEntry, resultIndices } from './xai-format';

const LIST_PAGE_SIZES = { size: 20, max: 100 };
const RESULT_PAGE_SIZES = { size: 100, max: 1000 };

export function xaiRoutes(state: FakeState): Route[] {
  const batchOr404 = (id: string | undefined): FakeBatch => {
    const batch = id ? state.getBatch(id) : undefined;
    if (!batch || batch.provider !== 'xai') throw new FakeHttpError(404, 'not_found', `Batch ${id} not found.`);
    return batch;
  };
  const render = (batch: FakeBatch) => batchObject(state, batch, state.snapshot(batch));
  const batchId = (params: Record<string, string>) => params.id;

  return [
    {
      name: 'xai.files.create',
      provider: 'xai',
      method: 'POST',
      pattern: /^\/xai\/v1\/files$/,
      // xAI takes the file part alone, no purpose.
      handle: async (ctx) => json(fileObject(storeInputFile(state, { ...uploadedFilePart(ctx, await ctx.body(), false), fields: OPENAI_LINE, provider: 'xai' }))),
    },
    {
      name: 'xai.files.delete',
      provider: 'xai',
      method: 'DELETE',
      pattern: /^\/xai\/v1\/files\/(?<id>[^/:]+)$/,
      handle: ({ params }) => {
        const file = state.getFile(params.id!);
        if (file?.provider !== 'xai') throw new FakeHttpError(404, 'not_found', `File ${params.id} not found.`);
        state.markDeleted('xai', file.id);
        return json({ id: file.id, object: 'file', deleted: true });
      },
    },
    {
      name: 'xai.batches.create',
      provider: 'xai',
      method: 'POST',
      pattern: /^\/xai\/v1\/batches$/,
      handle: async (ctx) => {
        const body = ((await ctx.json()) ?? {}) as { name?: unknown; input_file_id?: unknown };
        if (typeof body.name !== 'string' || body.name === '') throw new FakeHttpError(400, 'invalid_argument', 'name is required.');
        const file = typeof body.input_file_id === 'string' ? state.getFile(body.input_file_id) : undefined;
        if (!file) throw new FakeHttpError(400, 'invalid_argument', 'input_file_id does not name an uploaded file.');
        const created = state.createBatch({
          provider: 'xai',
          model: file.model,
          requests: file.requests,
          metadata: nameMetadata(body.name),
          inputFileId: file.id,
          validationErrors: file.parseErrors,
        });
        if (created === 'rejected' || created === 'queue_limited') throw new FakeHttpError(400, 'invalid_argument', 'Batch rejected (simulated).');
        return json(render(created));
      },
    },
    {
      name: 'xai.batches.retrieve',
      provider: 'xai',
      method: 'GET',
      pattern: /^\/xai\/v1\/batches\/(?<id>[^/:]+)$/,
      batchId,
      counter: 'retrieve',
      handle: ({ params }) => json(render(batchOr404(params.id))),
    },
    {
      name: 'xai.batches.list',
      provider: 'xai',
      method: 'GET',
      pattern: /^\/xai\/v1\/batches$/,
      handle: ({ url }) => {
        const page = tokenPage(state.listBatches('xai'), url.searchParams.get('pagination_token'), url.searchParams.get('limit'), LIST_PAGE_SIZES);
        return json({ batches: page.items.map(render), pagination_token: page.next ?? null });
      },
    },
    {
      name: 'xai.batches.cancel',
      provider: 'xai',
      method: 'POST',
      pattern: /^\/xai\/v1\/batches\/(?<id>[^/:]+):cancel$/,
      batchId,
      counter: 'cancel',
      handle: ({ params }) => {
        const batch = batchOr404(params.id);
        state.cancel(batch); // a finished batch is returned as it is
        return json(render(batch));
      },
    },
    {
      name: 'xai.batches.results',
      provider: 'xai',
      method: 'GET',
      pattern: /^\/xai\/v1\/batches\/(?<id>[^/:]+)\/results$/,
      batchId,
      counter: 'results',
      handle: ({ params, url }) => {
        const batch = batchOr404(params.id);
        const current = state.snapshot(batch);
        // Results are served as requests finish, before the batch does.
        const page = tokenPage(resultIndices(state, batch, current), url.searchParams.get('pagination_token'), url.searchParams.get('limit'), RESULT_PAGE_SIZES);
        const results = page.items.map((index) => resultEntry(batch, index, state.disposition(batch, current, index)));
        return json({ results, pagination_token: page.next ?? null });
      },
    },
  ];
}

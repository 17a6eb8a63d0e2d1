/**
 * Gemini API wire shapes: batch operations (GenerateContentBatch metadata with state, batchStats and output),
 * inlined responses keyed by `metadata.key`, responses file lines keyed by `key`, the Files API file object.
 */
import { fakeReply } from './replies';
import { shortHash } from './random';
import { brokenLine, resultOrder } from './result-file';
import type { Disposition, FakeBatch, FakeFile, FakeState } from './state';
import type { Phase, Snapshot } from './timeline';

const STATES: Readonly<Record<Phase, string>> = {
  validating: 'BATCH_STATE_PENDING',
  in_progress: 'BATCH_STATE_RUNNING',
  finalizing: 'BATCH_STATE_RUNNING',
  cancelling: 'BATCH_STATE_RUNNING',
  completed: 'BATCH_STATE_SUCCEEDED',
  failed: 'BATCH_STATE_FAILED',
  cancelled: 'BATCH_STATE_CANCELLED',
  expired: 'BATCH_STATE_EXPIRED',
};

const FILE_ID_PREFIX = 'batchout-';

/** Output of a file-input batch: `files/batchout-<batch hex>`. */
export function responsesFileName(batch: FakeBatch): string {
  return `files/${FILE_ID_PREFIX}${batch.id.replace(/^batches\//, '')}`;
}

/** The batch a responses file id (without `files/`) belongs to. */
export function batchOfResponsesFile(fileId: string): string | undefined {
  return fileId.startsWith(FILE_ID_PREFIX) ? `batches/${fileId.slice(FILE_ID_PREFIX.length)}` : undefined;
}

export function batchOperation(state: FakeState, batch: FakeBatch, current: Snapshot) {
  const tally = state.tally(batch, current);
  const sum = (...kinds: Disposition[]) => String(kinds.reduce((total, kind) => total + (tally.get(kind) ?? 0), 0));
  const iso = (ms: number) => new Date(ms).toISOString();
  const output = current.terminal ? batchOutput(state, batch, current) : undefined;
  return {
    name: batch.id,
    metadata: {
      '@type': 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch',
      name: batch.id,
      model: `models/${batch.model}`,
      displayName: batch.metadata?.name ?? '',
      createTime: iso(batch.timeline.createdAt),
      updateTime: iso(current.terminalAt ?? Date.now()),
      ...(current.terminalAt !== undefined ? { endTime: iso(current.terminalAt) } : {}),
      // int64 counts are strings in proto3 JSON.
      batchStats: {
        requestCount: String(batch.requests.length),
        successfulRequestCount: sum('succeeded', 'missing', 'malformed'),
        failedRequestCount: sum('errored', 'invalid', 'expired'),
        pendingRequestCount: sum('pending'),
      },
      state: STATES[current.phase],
      ...(output ? { output } : {}),
    },
    done: current.terminal,
    ...(output ? { response: { '@type': 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput', ...output } } : {}),
  };
}

/** Whatever the batch produced, cancelled, expired or failed batches included; nothing when it produced nothing. */
function batchOutput(state: FakeState, batch: FakeBatch, current: Snapshot) {
  const indices = resultIndices(state, batch, current);
  if (indices.length === 0) return undefined;
  if (batch.inputFileId) return { responsesFile: responsesFileName(batch) };
  const inlinedResponses = indices.map((index) => ({
    ...resultEntry(batch, index, state.disposition(batch, current, index)),
    metadata: { key: batch.requests[index]!.customId },
  }));
  return { inlinedResponses: { inlinedResponses } };
}

/** The responses file a finished file-input batch has (none while it runs, for inline input, or with no results). */
export function geminiResponsesFiles(state: FakeState, batch: FakeBatch): string[] {
  const current = state.snapshot(batch);
  return current.terminal && batch.inputFileId && resultIndices(state, batch, current).length > 0 ? [responsesFileName(batch)] : [];
}

/** Lines of the responses file: `{key, response}` or `{key, error}`. */
export function* responsesFileLines(state: FakeState, batch: FakeBatch, current: Snapshot): Generator<string> {
  for (const index of resultIndices(state, batch, current)) {
    const disposition = state.disposition(batch, current, index);
    const customId = batch.requests[index]!.customId;
    const line = JSON.stringify({ key: customId, ...resultEntry(batch, index, disposition === 'malformed' ? 'succeeded' : disposition) });
    yield disposition === 'malformed' ? brokenLine(line, customId, 'key') : line;
  }
}

/** Dispositions with a result; missing requests and those not run before the batch ended have none. */
const WITH_RESULT = new Set<Disposition>(['succeeded', 'malformed', 'errored', 'invalid', 'expired']);

/** Requests with a result, in the (shuffled) order they are written. */
function resultIndices(state: FakeState, batch: FakeBatch, current: Snapshot): number[] {
  const indices: number[] = [];
  for (const index of resultOrder(batch.id, batch.requests.length, state.config.shuffleResults)) {
    if (WITH_RESULT.has(state.disposition(batch, current, index))) indices.push(index);
  }
  return indices;
}

function resultEntry(batch: FakeBatch, index: number, disposition: Disposition): Record<string, unknown> {
  const { customId, params } = batch.requests[index]!;
  const error = (code: number, status: string, message: string) => ({ error: { code, message, status } });
  switch (disposition) {
    case 'succeeded':
      return { response: generateContentResponse(batch, customId, params) };
    case 'malformed':
      return {}; // inline: neither response nor error
    case 'errored':
      return error(500, 'INTERNAL', 'Internal error encountered (simulated).');
    case 'invalid':
      return error(400, 'INVALID_ARGUMENT', '* GenerateContentRequest.contents: contents is not specified (simulated).');
    case 'expired':
      return error(504, 'DEADLINE_EXCEEDED', 'The request deadline was exceeded (simulated).');
    default:
      throw new Error(`no Gemini result for ${disposition}`);
  }
}

function generateContentResponse(batch: FakeBatch, customId: string, params: Record<string, unknown>) {
  const reply = fakeReply(customId, params);
  return {
    candidates: [{ content: { parts: [{ text: reply.text }], role: 'model' }, finishReason: 'STOP', index: 0 }],
    usageMetadata: {
      promptTokenCount: reply.inputTokens,
      candidatesTokenCount: reply.outputTokens,
      totalTokenCount: reply.inputTokens + reply.outputTokens + reply.reasoningTokens,
      ...(reply.cachedInputTokens ? { cachedContentTokenCount: reply.cachedInputTokens } : {}),
      ...(reply.reasoningTokens ? { thoughtsTokenCount: reply.reasoningTokens } : {}),
    },
    modelVersion: batch.model,
    responseId: shortHash(`${batch.id}/${customId}`, 20),
  };
}

export function fileObject(file: FakeFile) {
  return {
    name: file.id,
    displayName: file.filename,
    mimeType: 'application/jsonl',
    sizeBytes: String(file.bytes),
    createTime: new Date(file.createdAt).toISOString(),
    state: 'ACTIVE',
    source: 'UPLOADED',
  };
}

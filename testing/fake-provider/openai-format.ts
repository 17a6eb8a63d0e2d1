/** OpenAI wire shapes: Batch and File objects, output/error file lines, error bodies. */
import { fakeReply } from './replies';
import { shortHash } from './random';
import { brokenLine, resultOrder } from './result-file';
import type { Disposition, FakeBatch, FakeFile, FakeState } from './state';
import type { Phase, Snapshot } from './timeline';

export type ResultFileKind = 'output' | 'error';

const DAY_SECONDS = 24 * 60 * 60;

export function openaiErrorBody(message: string, type: string, code: string | null = null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

export function resultFileId(batch: FakeBatch, kind: ResultFileKind): string {
  return `file-${batch.id.replace(/^batch_/, '')}-${kind}`;
}

/** Parses an id made by resultFileId back into batch id and kind. */
export function parseResultFileId(fileId: string): { batchId: string; kind: ResultFileKind } | undefined {
  const match = /^file-(.+)-(output|error)$/.exec(fileId);
  return match ? { batchId: `batch_${match[1]}`, kind: match[2] as ResultFileKind } : undefined;
}

/** Which file a request's line goes to; undefined = no line at all. */
export function fileFor(disposition: Disposition): ResultFileKind | undefined {
  switch (disposition) {
    case 'succeeded':
    case 'malformed':
      return 'output';
    case 'errored':
    case 'invalid':
    case 'expired':
    case 'batch_expired':
    case 'canceled':
      return 'error';
    default:
      return undefined;
  }
}

/**
 * The result files a finished batch has (a file with no lines is not created, as on the real API). A batch that
 * failed validation has none; one that failed mid-run (failAfterMs) keeps what it processed.
 */
export function resultFiles(state: FakeState, batch: FakeBatch, current: Snapshot, tally = state.tally(batch, current)): Set<ResultFileKind> {
  const files = new Set<ResultFileKind>();
  if (!current.terminal || (current.phase === 'failed' && current.processed === 0)) return files;
  for (const [disposition] of tally) {
    const kind = fileFor(disposition);
    if (kind) files.add(kind);
  }
  return files;
}

/** `statusName` spells the phase the way an OpenAI-compatible variant does (OpenAI: the phase itself). */
export function batchObject(state: FakeState, batch: FakeBatch, current: Snapshot, statusName: (phase: Phase) => string = (phase) => phase) {
  const tally = state.tally(batch, current);
  const sum = (...kinds: Disposition[]) => kinds.reduce((total, kind) => total + (tally.get(kind) ?? 0), 0);
  const files = resultFiles(state, batch, current, tally);
  const created = seconds(batch.timeline.createdAt);
  const at = (phase: Snapshot['phase']) => (current.phase === phase ? seconds(current.terminalAt) : null);
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    model: batch.model,
    errors:
      current.phase === 'failed'
        ? { object: 'list', data: batch.validationErrors.map((e) => ({ code: e.code, message: e.message, param: null, line: e.line })) }
        : null,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: statusName(current.phase),
    output_file_id: files.has('output') ? resultFileId(batch, 'output') : null,
    error_file_id: files.has('error') ? resultFileId(batch, 'error') : null,
    created_at: created,
    in_progress_at: seconds(current.inProgressAt),
    expires_at: created + DAY_SECONDS,
    finalizing_at: seconds(current.finalizingAt),
    completed_at: at('completed'),
    failed_at: at('failed'),
    expired_at: at('expired'),
    cancelling_at: seconds(current.cancellingAt),
    cancelled_at: at('cancelled'),
    request_counts: {
      total: batch.requests.length,
      completed: sum('succeeded', 'missing', 'malformed'),
      failed: sum('errored', 'invalid', 'expired', 'batch_expired'),
    },
    metadata: batch.metadata,
  };
}

export function fileObject(file: Pick<FakeFile, 'id' | 'bytes' | 'createdAt' | 'filename' | 'purpose'>) {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: seconds(file.createdAt),
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    expires_at: null,
    status_details: null,
  };
}

export function* resultLines(state: FakeState, batch: FakeBatch, current: Snapshot, kind: ResultFileKind): Generator<string> {
  for (const index of resultOrder(batch.id, batch.requests.length, state.config.shuffleResults)) {
    const disposition = state.disposition(batch, current, index);
    if (fileFor(disposition) !== kind) continue;
    yield resultLine(batch, index, disposition);
  }
}

function resultLine(batch: FakeBatch, index: number, disposition: Disposition): string {
  const request = batch.requests[index]!;
  const customId = request.customId;
  const lineId = shortHash(`${batch.id}/${customId}`, 24);
  const line = (response: unknown, error: unknown) =>
    JSON.stringify({ id: `batch_req_${lineId}`, custom_id: customId, response, error });
  const response = (statusCode: number, body: unknown) => ({ status_code: statusCode, request_id: `req_${lineId}`, body });
  switch (disposition) {
    case 'succeeded':
      return line(response(200, replyBody(batch, request.customId, request.params, lineId)), null);
    case 'malformed':
      return brokenLine(line(response(200, replyBody(batch, request.customId, request.params, lineId)), null), customId);
    case 'errored':
      return line(response(500, openaiErrorBody('The server had an error while processing your request.', 'server_error')), null);
    case 'invalid':
      return line(response(400, openaiErrorBody("Invalid value for 'messages' (simulated).", 'invalid_request_error', 'invalid_value', 'messages')), null);
    case 'expired':
    case 'batch_expired':
      return line(null, { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' });
    case 'canceled':
      return line(null, { code: 'batch_cancelled', message: 'This request was not executed because the batch was cancelled.' });
    default:
      throw new Error(`no OpenAI result line for ${disposition}`);
  }
}

/** The answer of the batch's endpoint: a chat completion, a Responses API response or an embeddings list. */
export function replyBody(batch: FakeBatch, customId: string, params: Record<string, unknown>, lineId: string) {
  if (batch.endpoint.endsWith('/responses')) return responsesReply(batch, customId, params, lineId);
  if (batch.endpoint.endsWith('/embeddings')) return embeddingsReply(batch, customId, params);
  return chatCompletion(batch, customId, params, lineId);
}

function responsesReply(batch: FakeBatch, customId: string, params: Record<string, unknown>, lineId: string) {
  const reply = fakeReply(customId, params);
  const output = reply.outputTokens + reply.reasoningTokens;
  return {
    id: `resp_${lineId}`,
    object: 'response',
    created_at: seconds(batch.timeline.createdAt),
    status: 'completed',
    model: batch.model,
    output: [{ type: 'message', id: `msg_${lineId}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: reply.text, annotations: [] }] }],
    usage: {
      input_tokens: reply.inputTokens,
      input_tokens_details: { cached_tokens: reply.cachedInputTokens },
      output_tokens: output,
      output_tokens_details: { reasoning_tokens: reply.reasoningTokens },
      total_tokens: reply.inputTokens + output,
    },
  };
}

function embeddingsReply(batch: FakeBatch, customId: string, params: Record<string, unknown>) {
  const reply = fakeReply(customId, params);
  const inputs = Array.isArray(params.input) ? params.input : [params.input];
  const vector = (index: number) => Array.from({ length: 8 }, (_, i) => Number((((index + 1) * (i + 3)) % 17 / 17).toFixed(4)));
  return {
    object: 'list',
    model: batch.model,
    data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: vector(index) })),
    usage: { prompt_tokens: reply.inputTokens, total_tokens: reply.inputTokens },
  };
}

export function chatCompletion(batch: FakeBatch, customId: string, params: Record<string, unknown>, lineId: string) {
  const reply = fakeReply(customId, params);
  const completion = reply.outputTokens + reply.reasoningTokens;
  return {
    id: `chatcmpl-${lineId}`,
    object: 'chat.completion',
    created: seconds(batch.timeline.createdAt),
    model: batch.model,
    choices: [{ index: 0, message: { role: 'assistant', content: reply.text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
    // prompt_tokens includes the cached ones, completion_tokens the reasoning ones (as on the real API).
    usage: {
      prompt_tokens: reply.inputTokens,
      completion_tokens: completion,
      total_tokens: reply.inputTokens + completion,
      prompt_tokens_details: { cached_tokens: reply.cachedInputTokens, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: reply.reasoningTokens, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
    system_fingerprint: null,
  };
}

function seconds(ms: number): number;
function seconds(ms: number | undefined): number | null;
function seconds(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.floor(ms / 1000);
}

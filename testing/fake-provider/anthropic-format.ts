/** Anthropic wire shapes: MessageBatch objects, results lines, error bodies. */
import { fakeReply, type FakeReply } from './replies';
import { shortHash } from './random';
import { brokenLine, resultOrder } from './result-file';
import type { Disposition, FakeBatch, FakeState } from './state';
import type { Snapshot } from './timeline';

const DAY_MS = 24 * 60 * 60 * 1000;

export function anthropicErrorBody(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}

/** results_url must be absolute (the SDK bypasses baseURL for it), so it is built from the caller's origin. */
export function batchObject(state: FakeState, batch: FakeBatch, current: Snapshot, origin: string) {
  const ended = current.terminal;
  const tally = ended ? state.tally(batch, current) : new Map<Disposition, number>();
  const sum = (...kinds: Disposition[]) => kinds.reduce((total, kind) => total + (tally.get(kind) ?? 0), 0);
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  return {
    id: batch.id,
    type: 'message_batch',
    processing_status: ended ? 'ended' : current.phase === 'cancelling' ? 'canceling' : 'in_progress',
    // Like the real API, the outcome counters stay 0 until the whole batch has ended.
    request_counts: {
      processing: ended ? 0 : batch.requests.length,
      succeeded: sum('succeeded', 'missing', 'malformed'),
      errored: sum('errored', 'invalid', 'batch_failed'),
      canceled: sum('canceled'),
      expired: sum('expired', 'batch_expired'),
    },
    created_at: iso(batch.timeline.createdAt),
    expires_at: iso(batch.timeline.createdAt + DAY_MS),
    ended_at: iso(current.terminalAt),
    cancel_initiated_at: iso(current.cancellingAt),
    archived_at: null,
    results_url: ended ? `${origin}/v1/messages/batches/${batch.id}/results` : null,
  };
}

export function* resultLines(state: FakeState, batch: FakeBatch, current: Snapshot): Generator<string> {
  for (const index of resultOrder(batch.id, batch.requests.length, state.config.shuffleResults)) {
    const line = resultLine(batch, index, state.disposition(batch, current, index));
    if (line !== undefined) yield line;
  }
}

function resultLine(batch: FakeBatch, index: number, disposition: Disposition): string | undefined {
  const { customId, params } = batch.requests[index]!;
  const line = (result: unknown) => JSON.stringify({ custom_id: customId, result });
  const errored = (type: string, message: string) =>
    line({ type: 'errored', error: { ...anthropicErrorBody(type, message), request_id: `req_${shortHash(`${batch.id}/${customId}`, 24)}` } });
  switch (disposition) {
    case 'succeeded':
      return line({ type: 'succeeded', message: message(batch, customId, params) });
    case 'malformed':
      return brokenLine(line({ type: 'succeeded', message: message(batch, customId, params) }), customId);
    case 'errored':
      return errored('api_error', 'Internal server error (simulated).');
    case 'invalid':
      return errored('invalid_request_error', 'messages: field required (simulated).');
    case 'batch_failed':
      return errored('api_error', 'The batch failed (simulated).');
    case 'expired':
    case 'batch_expired':
      return line({ type: 'expired' });
    case 'canceled':
      return line({ type: 'canceled' });
    default:
      return undefined; // missing, pending
  }
}

function message(batch: FakeBatch, customId: string, params: Record<string, unknown>) {
  return messageObject(`msg_${shortHash(`${batch.id}/${customId}`, 24)}`, batch.model, fakeReply(customId, params));
}

/** An Anthropic Message object with the stand-in reply (batch results and the synchronous messages.create alike). */
export function messageObject(id: string, model: unknown, reply: FakeReply) {
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: reply.text }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    // input_tokens is the uncached input only; output_tokens includes thinking (Anthropic reports no reasoning count).
    usage: {
      input_tokens: reply.inputTokens - reply.cachedInputTokens - reply.cacheWriteTokens,
      output_tokens: reply.outputTokens + reply.reasoningTokens,
      cache_creation_input_tokens: reply.cacheWriteTokens,
      cache_read_input_tokens: reply.cachedInputTokens,
    },
  };
}

/**
 * xAI wire shapes: batch objects (no status field, only counts, `cancel_time`, `cancel_by_xai_message` and
 * `expire_time`) and results entries keyed by `batch_request_id`, whose errors carry gRPC codes.
 */
import { chatCompletion } from './openai-format';
import { shortHash } from './random';
import { resultOrder } from './result-file';
import type { Disposition, FakeBatch, FakeState } from './state';
import type { Snapshot } from './timeline';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Dispositions with a results entry; missing requests and those still pending, expired or dropped by a failure have none. */
const WITH_RESULT = new Set<Disposition>(['succeeded', 'malformed', 'errored', 'invalid', 'expired', 'canceled']);

export function batchObject(state: FakeState, batch: FakeBatch, current: Snapshot) {
  const tally = state.tally(batch, current);
  const sum = (...kinds: Disposition[]) => kinds.reduce((total, kind) => total + (tally.get(kind) ?? 0), 0);
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  const { timeline } = batch;
  // Requests are only counted once the input file has been read, and never when it was rejected.
  const counted = current.phase !== 'validating' && !timeline.failed;
  return {
    batch_id: batch.id,
    name: batch.metadata?.name ?? '',
    create_time: iso(timeline.createdAt),
    expire_time: iso(timeline.createdAt + (timeline.expireAfterMs ?? DAY_MS)),
    create_api_key_id: '********-****-****-****-************',
    cancel_time: iso(current.cancellingAt),
    cancel_by_xai_message: current.phase === 'failed' ? rejection(batch) : null,
    state: {
      num_requests: counted ? batch.requests.length : 0,
      num_pending: counted ? sum('pending', 'batch_expired') : 0,
      num_success: counted ? sum('succeeded', 'missing', 'malformed') : 0,
      num_error: counted ? sum('errored', 'invalid', 'expired') : 0,
      num_cancelled: counted ? sum('canceled', 'batch_failed') : 0,
    },
  };
}

function rejection(batch: FakeBatch): string {
  const problem = batch.validationErrors[0]?.message;
  return problem ? `Batch rejected by xAI: ${problem}` : 'Batch cancelled by xAI (simulated failure).';
}

/** Requests with a results entry, in the (shuffled) order they are served. */
export function resultIndices(state: FakeState, batch: FakeBatch, current: Snapshot): number[] {
  const indices: number[] = [];
  for (const index of resultOrder(batch.id, batch.requests.length, state.config.shuffleResults)) {
    if (WITH_RESULT.has(state.disposition(batch, current, index))) indices.push(index);
  }
  return indices;
}

export function resultEntry(batch: FakeBatch, index: number, disposition: Disposition): Record<string, unknown> {
  const { customId, params } = batch.requests[index]!;
  const entry = (batchResult: unknown, extra: Record<string, unknown> = {}) => ({ batch_request_id: customId, batch_result: batchResult, ...extra });
  const error = (code: number, message: string) => entry({ error: { code, message } });
  switch (disposition) {
    case 'succeeded':
      return entry({ response: { chat_get_completion: chatCompletion(batch, customId, params, shortHash(`${batch.id}/${customId}`, 24)) } });
    case 'malformed':
      return entry({}); // neither a completion nor an error
    case 'errored':
      return error(13, 'Internal error while processing the request (simulated).');
    case 'invalid':
      return error(3, 'Invalid request: messages must not be empty (simulated).');
    case 'expired':
      return entry({ error: { code: 4, message: 'Deadline exceeded (simulated).' } }, { error_message: 'Deadline exceeded (simulated).' });
    case 'canceled':
      return error(1, 'The batch was cancelled before this request ran.');
    default:
      throw new Error(`no xAI result for ${disposition}`);
  }
}

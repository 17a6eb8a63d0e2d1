/**
 * The batch state machine as a pure function of wall-clock time: given when things were requested, where is the
 * batch now and how many requests are processed. Nothing is scheduled, so changing a batch's timing (completeNow,
 * setProcessingMs) takes effect on the next read.
 */

export interface Timeline {
  createdAt: number;
  processingMs: number;
  expireAfterMs: number | null;
  /** Fails mid-processing (processed requests keep their outcomes); `failed` below fails at validation. */
  failAfterMs: number | null;
  cancelDelayMs: number;
  cancelRequestedAt: number | null;
  failed: boolean;
  requestCount: number;
}

/** Provider-neutral phases; the formats translate them (e.g. Anthropic shows completed/cancelled/expired as ended). */
export type Phase = 'validating' | 'in_progress' | 'finalizing' | 'completed' | 'failed' | 'cancelling' | 'cancelled' | 'expired';

export interface Snapshot {
  phase: Phase;
  terminal: boolean;
  /** Requests processed so far (in input order); frozen at cancel request or expiry. */
  processed: number;
  inProgressAt?: number;
  finalizingAt?: number;
  cancellingAt?: number;
  terminalAt?: number;
}

const VALIDATING_FRACTION = 0.1;
const PROCESSING_END_FRACTION = 0.9;

export function snapshot(t: Timeline, now: number): Snapshot {
  const validatedAt = t.createdAt + t.processingMs * VALIDATING_FRACTION;
  const processedAllAt = t.createdAt + t.processingMs * PROCESSING_END_FRACTION;
  const completeAt = t.createdAt + t.processingMs;
  const reached = (at: number, limit: number) => (at <= limit ? at : undefined);

  if (t.failed) {
    return now >= validatedAt
      ? { phase: 'failed', terminal: true, processed: 0, terminalAt: validatedAt }
      : { phase: 'validating', terminal: false, processed: 0 };
  }
  if (t.cancelRequestedAt !== null) {
    const doneAt = t.cancelRequestedAt + t.cancelDelayMs;
    const base = {
      processed: processedAt(t, t.cancelRequestedAt),
      cancellingAt: t.cancelRequestedAt,
      ...optional('inProgressAt', reached(validatedAt, t.cancelRequestedAt)),
    };
    return now >= doneAt
      ? { ...base, phase: 'cancelled', terminal: true, terminalAt: doneAt }
      : { ...base, phase: 'cancelling', terminal: false };
  }
  const expireAt = t.expireAfterMs === null ? Infinity : t.createdAt + t.expireAfterMs;
  const failAt = t.failAfterMs === null ? Infinity : t.createdAt + t.failAfterMs;
  const endAt = Math.min(expireAt, failAt);
  if (endAt < completeAt && now >= endAt) {
    return {
      phase: failAt <= expireAt ? 'failed' : 'expired',
      terminal: true,
      processed: processedAt(t, endAt),
      terminalAt: endAt,
      ...optional('inProgressAt', reached(validatedAt, endAt)),
      ...optional('finalizingAt', reached(processedAllAt, endAt)),
    };
  }
  const timestamps = {
    ...optional('inProgressAt', reached(validatedAt, now)),
    ...optional('finalizingAt', reached(processedAllAt, now)),
  };
  if (now >= completeAt) return { phase: 'completed', terminal: true, processed: t.requestCount, terminalAt: completeAt, ...timestamps };
  const phase: Phase = now < validatedAt ? 'validating' : now < processedAllAt ? 'in_progress' : 'finalizing';
  return { phase, terminal: false, processed: processedAt(t, now), ...timestamps };
}

/** Requests are processed evenly between the end of validation and 90% of the processing time. */
function processedAt(t: Timeline, at: number): number {
  const start = t.createdAt + t.processingMs * VALIDATING_FRACTION;
  const span = t.processingMs * (PROCESSING_END_FRACTION - VALIDATING_FRACTION);
  if (at < start) return 0;
  if (span <= 0 || at >= start + span) return t.requestCount;
  return Math.floor((t.requestCount * (at - start)) / span);
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}

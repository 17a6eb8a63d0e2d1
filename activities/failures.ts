import { ApplicationFailure } from '@temporalio/common';
import { ProviderError } from '../providers/errors';

/**
 * Turns whatever an activity threw into an ApplicationFailure the retry policy understands: provider rejections
 * (400/401/403/404/413/422) are non-retryable, rate limits honour the provider's retry-after. Messages carry causes,
 * never request or result bodies.
 */
export function toActivityFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof ProviderError) {
    const { provider, code, httpStatus, retryable, retryAfterMs } = error.details;
    return ApplicationFailure.create({
      type: retryable ? 'ProviderUnavailable' : 'ProviderRejected',
      message: error.message,
      nonRetryable: !retryable,
      nextRetryDelay: retryable && retryAfterMs !== undefined ? Math.max(retryAfterMs, 1) : undefined,
      details: [{ provider, code, httpStatus: httpStatus ?? null }],
      cause: error,
    });
  }
  if (error instanceof Error) {
    const failure = ApplicationFailure.create({ type: error.name || 'Error', message: error.message });
    failure.stack = error.stack; // operators need the stack of the code that failed, not of this conversion
    return failure;
  }
  return ApplicationFailure.create({ type: 'Error', message: String(error) });
}

/** A failure no retry can fix, named after its cause. */
export function permanentFailure(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/**
 * Provider errors normalised for the retry policy: activities turn a ProviderError into a Temporal
 * ApplicationFailure whose type and retryability come from here.
 */

/** HTTP statuses that no retry can fix. */
export const NON_RETRYABLE_HTTP_STATUSES: readonly number[] = [400, 401, 403, 404, 413, 422];

export class ProviderError extends Error {
  override readonly name = 'ProviderError';
  constructor(
    message: string,
    readonly details: {
      provider: string;
      /** Short machine-readable cause, e.g. 'rate_limited', 'not_found', 'connection_reset'. */
      code: string;
      httpStatus?: number;
      retryable: boolean;
      /** Provider's retry-after hint, in milliseconds. */
      retryAfterMs?: number;
    },
  ) {
    super(message);
  }
}

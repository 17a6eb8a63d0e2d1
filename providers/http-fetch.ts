/**
 * fetch for adapters whose SDK keeps no response headers on its errors (Gemini's `httpOptions.fetch` hook and its
 * results download). Reads (GET) are retried the way the OpenAI and Anthropic SDKs retry them; a final non-2xx
 * response becomes an HttpStatusError, so classifyError sees status, headers (retry-after) and body.
 */
import { HttpStatusError, parseRetryAfter } from './classify-error';

/** Besides every 5xx; `x-should-retry` overrides both ways, as in the Stainless SDKs. */
const RETRYABLE_STATUSES: readonly number[] = [408, 409, 429];
/** Longer hints are left to the activity retry policy rather than slept through here. */
const MAX_HINTED_DELAY_MS = 60_000;

export function retryingFetch(maxRetries: number, baseFetch: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    // Only reads: a retried create could make a second provider batch.
    const retries = (init?.method ?? 'GET').toUpperCase() === 'GET' ? maxRetries : 0;
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await baseFetch(input, init);
      } catch (err) {
        if (attempt >= retries || init?.signal?.aborted) throw err;
        await sleep(backoffMs(attempt));
        continue;
      }
      if (response.ok) return response;
      if (attempt >= retries || !shouldRetry(response)) throw await HttpStatusError.from(response);
      const hinted = parseRetryAfter(response.headers);
      await response.body?.cancel().catch(() => undefined);
      await sleep(hinted !== undefined && hinted <= MAX_HINTED_DELAY_MS ? hinted : backoffMs(attempt));
    }
  };
}

function shouldRetry(response: Response): boolean {
  const header = response.headers.get('x-should-retry');
  if (header === 'true' || header === 'false') return header === 'true';
  return response.status >= 500 || RETRYABLE_STATUSES.includes(response.status);
}

/** 0.5 s doubling to 8 s, minus up to 25% jitter. */
function backoffMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 8_000) * (1 - Math.random() * 0.25);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

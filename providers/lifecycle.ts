/** Batch lifecycle rules both adapters share: idempotent cancel, when and how results may be read. */
import { badResponse, callProvider, describeCall, type CallContext } from './classify-error';
import { ProviderError } from './errors';
import type { ByteSource } from './jsonl';
import { isTerminalBatchStatus } from '../domain/statuses';
import type { ProviderStatusReport } from './types';

/**
 * Cancels, treating "cannot cancel, batch already finished" (400/409) as success: a batch that ended between the
 * last poll and the cancel call is exactly the state the caller wanted, and the retry layer must not loop on it.
 */
export async function cancelOrReport(
  cancel: () => Promise<ProviderStatusReport>,
  getStatus: () => Promise<ProviderStatusReport>,
): Promise<ProviderStatusReport> {
  try {
    return await cancel();
  } catch (err) {
    const status = err instanceof ProviderError ? err.details.httpStatus : undefined;
    if (status === 400 || status === 409) {
      const report = await getStatus();
      if (isTerminalBatchStatus(report.status)) return report;
    }
    throw err;
  }
}

/**
 * Returns true when there are results to stream. A running batch without results is a retryable error (the caller
 * asked too early); a finished one without results (e.g. failed validation) simply has none.
 */
export function hasReadableResults(report: ProviderStatusReport, ctx: CallContext): boolean {
  if (report.resultsAvailable) return true;
  if (isTerminalBatchStatus(report.status)) return false;
  throw new ProviderError(`${describeCall(ctx)}: results not available yet (status ${report.rawStatus})`, {
    provider: ctx.provider,
    code: 'results_not_available',
    retryable: true,
  });
}

/** The streaming body of a results download; an HTML page here is a proxy error, not a results file. */
export function resultsBody(response: Response, ctx: CallContext): ByteSource | null {
  if (/text\/html/i.test(response.headers.get('content-type') ?? '')) {
    void response.body?.cancel().catch(() => undefined);
    throw badResponse(ctx, 'results download returned an HTML page');
  }
  return response.body;
}

export function isJsonResponse(response: Response): boolean {
  return /json/i.test(response.headers.get('content-type') ?? '');
}

/**
 * Deletes each file once (ids repeated or absent are skipped); a file the provider no longer has (404) counts as
 * deleted, so a retried or repeated deletion succeeds. Every file is tried even when one fails, then the first other
 * failure is thrown (the step retries it, and finds the files deleted this time gone).
 */
export async function deleteEach(
  ctx: CallContext, ids: readonly (string | null | undefined)[], remove: (id: string) => Promise<unknown>,
): Promise<{ deleted: number }> {
  let deleted = 0;
  let failure: unknown;
  for (const id of new Set(ids.filter((value): value is string => typeof value === 'string' && value !== ''))) {
    try {
      await callProvider(ctx, () => remove(id));
      deleted += 1;
    } catch (err) {
      if (err instanceof ProviderError && err.details.httpStatus === 404) continue;
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
  return { deleted };
}

/** The call's answer, or undefined when the provider says 404 (a batch it no longer has). */
export async function withoutNotFound<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ProviderError && err.details.httpStatus === 404) return undefined;
    throw err;
  }
}

/** Batch lifecycle rules both adapters share: idempotent cancel, when and how results may be read. */
import { badResponse, describeCall, type CallContext } from './classify-error';
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

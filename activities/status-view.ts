import type { BatchStatus, RequestCounts } from '../domain/types';

/** What the poll, cancel and submit steps tell the workflow: the batch's combined status and counts. */
export interface StatusView {
  status: BatchStatus;
  counts: RequestCounts;
  resultsAvailable: boolean;
  attempt: number;
  /**
   * The provider refused the round for a full queue (a part failed with token_limit_exceeded, or a create was
   * refused with a queue-limit 429): the batch goes back to waiting for admission instead of failing.
   */
  queueLimited?: { code: string; message: string };
}

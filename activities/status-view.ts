import type { BatchStatus, RequestCounts } from '../domain/types';

/** What the poll, cancel and submit steps tell the workflow: the batch's combined status and counts. */
export interface StatusView {
  status: BatchStatus;
  counts: RequestCounts;
  resultsAvailable: boolean;
  attempt: number;
}

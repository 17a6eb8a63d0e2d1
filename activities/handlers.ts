import type { PoolClient } from 'pg';
import type { BatchOutcome, RequestStatus, ResultSummary } from '../domain/types';
import type { BatchRecord } from '../db/batches-store';
import type { RequestRecord } from '../db/requests-store';
import type { JobRecord } from '../db/jobs-store';
import type { DeadLetterRecord } from '../db/dead-letters-store';

/** What apps register on the worker: batch completion handlers by name and job executors by type. */

export interface BatchHandlerContext {
  batch: BatchRecord;
  outcome: BatchOutcome;
  summary: ResultSummary;
  /** Every request with its result, in submission order, read page by page. */
  results(options?: { pageSize?: number; status?: RequestStatus }): AsyncIterable<RequestRecord>;
  /**
   * The transaction that stamps handler_dispatched_at. Writes made through it commit together with the stamp, so
   * they happen exactly once even if the worker dies mid-dispatch.
   */
  db: PoolClient;
}

export interface BatchFailureContext {
  batch: BatchRecord;
  /** The dead letter an operator discarded. */
  deadLetter: DeadLetterRecord;
  db: PoolClient;
}

export interface BatchHandler {
  /** Called once when the batch is terminal and its results are stored (ended, canceled, expired or failed). */
  onComplete(context: BatchHandlerContext): Promise<void>;
  /** Called once when an operator discards a dead-lettered batch: its work failed for good. */
  onFailure?(context: BatchFailureContext): Promise<void>;
}

export type BatchHandlerRegistry = Record<string, BatchHandler>;

export interface JobContext {
  job: JobRecord;
  /** Temporal's attempt number of this run, 1-based (the try count). */
  attempt: number;
  heartbeat(details?: unknown): void;
}

export interface JobExecutor {
  /** Does the work. Return a small JSON-serialisable output (stored in PostgreSQL, not in Temporal). */
  execute(input: unknown, context: JobContext): Promise<unknown>;
  /** Called once when an operator discards the dead-lettered job. */
  onFailure?(job: JobRecord, deadLetter: DeadLetterRecord): Promise<void>;
}

export type JobExecutorRegistry = Record<string, JobExecutor>;

/**
 * The entry registered under `name`, own properties only: a stored handler name or job type such as `constructor`
 * or `toString` must be "not registered", not a method inherited from Object.prototype.
 */
export function registered<T>(registry: Record<string, T> | undefined, name: string): T | undefined {
  return registry && Object.prototype.hasOwnProperty.call(registry, name) ? registry[name] : undefined;
}

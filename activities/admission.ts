/** Admission control's shared steps: permits released and the batches they let in woken (see db/admissions-store.ts). */
import { DEFAULT_ADMISSION, type AdmissionConfig } from '../domain/admission';
import { admissionChangedSignal } from '../domain/definitions';
import { TERMINAL_BATCH_STATUSES, type BatchStatus } from '../domain/statuses';
import { releaseFinishedPermits, releasePermits } from '../db/admissions-store';
import { inTransaction } from '../db/pool';
import type { ActivityDeps } from './deps';

/** What admitBatch tells the workflow. Ids, counts and times only. */
export interface AdmissionDecision {
  admitted: boolean;
  status: BatchStatus;
  /** Place in the budget's queue while waiting (1: next). */
  position?: number;
  /** When to ask again at the latest (a release wakes the workflow sooner). */
  retryAfterMs: number;
  budget?: string;
  estimatedTokens?: number;
  estimator?: string;
}

export function admissionConfig(deps: ActivityDeps): AdmissionConfig {
  return deps.admission ?? DEFAULT_ADMISSION;
}

/** Signals the workflows whose permits were just granted, so they submit without waiting for their next check. */
export async function wakeGranted(deps: ActivityDeps, granted: { batchId: string; workflowId: string }[], except?: string): Promise<void> {
  const temporal = deps.temporal;
  if (!temporal) return;
  await Promise.all(granted.filter((grant) => grant.batchId !== except).map((grant) =>
    temporal.workflow.getHandle(grant.workflowId).signal(admissionChangedSignal).catch(() => undefined)));
}

/** Releases the batch's permits up to its current round (idempotent) and wakes the batches that now fit. */
export async function releaseBatchPermits(deps: ActivityDeps, batchId: string, round: number): Promise<void> {
  // Without budgets nothing is admitted; permits an earlier configuration left are released by the sweep.
  if (Object.keys(admissionConfig(deps).budgets).length === 0) return;
  const granted = await inTransaction(deps.pool, (db) => releasePermits(db, batchId, round));
  await wakeGranted(deps, granted);
}

/** The sweep's share: permits of rounds that are over (their workflow gone before releasing them) are released. */
export async function releaseFinishedAdmissions(deps: ActivityDeps): Promise<number> {
  const { released, granted } = await inTransaction(deps.pool, (db) => releaseFinishedPermits(db, TERMINAL_BATCH_STATUSES));
  await wakeGranted(deps, granted);
  return released;
}

import { setDeadline } from '../db/batches-store';
import type { ActivityDeps } from './deps';

/** Stores a new deadline set by an operator. */
export function createRecordDeadline(deps: ActivityDeps) {
  return async function recordDeadline(input: { batchId: string; deadlineAt: string }): Promise<void> {
    await setDeadline(deps.pool, input.batchId, new Date(input.deadlineAt));
  };
}

import type { PoolClient } from 'pg';
import { isTerminalBatchStatus } from '../domain/statuses';
import type { BatchOutcome, RequestStatus } from '../domain/types';
import { getBatchForUpdate, markHandlerDispatched, summarizeRequests } from '../db/batches-store';
import { inTransaction, schemaOf } from '../db/pool';
import { listRequests } from '../db/requests-store';
import { withAppSearchPath } from '../db/schema';
import { batchSubject } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';
import { registered } from './handlers';
import { trackStep } from './step-tracking';

/**
 * Calls the completion handler once: only after results are stored, and stamped in the same transaction as the
 * handler's own writes.
 */
export function createDispatchHandler(deps: ActivityDeps) {
  const { pool } = deps;
  return async function dispatchHandler(input: { batchId: string }): Promise<{ dispatched: boolean; outcome: BatchOutcome; attempt: number }> {
    return trackStep(pool, batchSubject(input.batchId), 'dispatch_handler', async (attempt, tracking) => {
      return inTransaction(pool, async (db) => {
        const batch = await getBatchForUpdate(db, input.batchId);
        if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.batchId} does not exist in PostgreSQL`);
        if (!batch.resultsFetchedAt) throw permanentFailure('ResultsNotFetched', `batch ${batch.id} has no stored results yet`);
        if (!isTerminalBatchStatus(batch.status)) throw permanentFailure('NotTerminal', `batch ${batch.id} is still ${batch.status}`);
        const outcome: BatchOutcome = batch.status;
        if (batch.handlerDispatchedAt) return { dispatched: false, outcome, attempt };
        if (batch.handlerName) {
          const handler = registered(deps.handlers, batch.handlerName);
          if (!handler) {
            throw permanentFailure('UnknownHandler', `no completion handler named '${batch.handlerName}' is registered on this worker`);
          }
          const summary = await summarizeRequests(db, batch.id);
          // The handler writes the app's tables through `db` (its own search path) and pages the results on the same
          // connection (schema-qualified): a dispatch holds one connection, so dispatches beyond the pool's size
          // wait for one instead of each holding one and waiting for a second.
          const started = Date.now();
          try {
            await withAppSearchPath(db, () => handler.onComplete({
              batch,
              outcome,
              summary,
              db,
              results: (options = {}) => pageRequests(db, schemaOf(pool), batch.id, options.pageSize ?? 500, options.status),
            }));
          } catch (error) {
            deps.metrics?.handlerDuration(batch.handlerName, 'failed', Date.now() - started);
            throw error;
          }
          deps.metrics?.handlerDuration(batch.handlerName, 'ok', Date.now() - started);
        }
        // The step's success commits with the stamp: the transaction's commit is all that can still fail.
        await markHandlerDispatched(db, batch.id, outcome, (params) => tracking.successSql(params));
        return { dispatched: true, outcome, attempt };
      });
    });
  };
}

async function* pageRequests(db: PoolClient, schema: string, batchId: string, pageSize: number, status?: RequestStatus) {
  let afterPosition = -1;
  for (;;) {
    const page = await listRequests(db, batchId, { afterPosition, limit: pageSize, status, schema });
    yield* page;
    if (page.length < pageSize) return;
    afterPosition = page[page.length - 1].position;
  }
}

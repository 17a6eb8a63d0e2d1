import { Context } from '@temporalio/activity';
import { budgetFor } from '../domain/admission';
import type { BatchStatus } from '../domain/statuses';
import { getAdmission, grantInOrder, lockBudget, queuePosition, requestPermit } from '../db/admissions-store';
import { markAdmitted, markQueued } from '../db/batches-store';
import { inTransaction } from '../db/pool';
import { admissionConfig, wakeGranted, type AdmissionDecision } from './admission';
import { batchLookup } from './batch-lookup';
import type { ActivityDeps } from './deps';
import { estimateRoundTokens } from './token-estimate';

/**
 * Asks for the round's permit (the first ask estimates its tokens and takes its place in the queue) and grants what
 * fits, oldest first, in one transaction on the budget's row. A batch not admitted is `queued`; an admitted one is
 * pending, ready to submit. Without a budget for its provider and model a batch is admitted at once.
 */
export function createAdmitBatch(deps: ActivityDeps) {
  const { pool } = deps;
  const lookup = batchLookup(deps);
  return async function admitBatch(input: { batchId: string }): Promise<AdmissionDecision> {
    const config = admissionConfig(deps);
    const batch = await lookup.batch(input.batchId);
    if (batch.status !== 'pending' && batch.status !== 'queued') return { admitted: true, status: batch.status, retryAfterMs: 0 };
    const found = budgetFor(config, batch.provider, batch.model);
    if (!found) {
      if (batch.status === 'queued') await inTransaction(pool, (db) => markAdmitted(db, batch.id, { round: batch.round, budget: null }));
      return { admitted: true, status: 'pending', retryAfterMs: 0 };
    }
    const budgetName = `${batch.provider}/${found.model}`;
    const existing = await getAdmission(pool, batch.id, batch.round);
    const estimate = existing ? null : await estimateRoundTokens(pool, batch.id, batch.round, batch.model, (requests) => Context.current().heartbeat({ requests }));
    const maxRequests = deps.providers.get(batch.provider)?.limits.maxRequests ?? Number.MAX_SAFE_INTEGER;
    const decided = await inTransaction(pool, async (db) => {
      await lockBudget(db, batch.provider, found.model, found.budget);
      if (estimate) {
        await requestPermit(db, {
          batchId: batch.id, round: batch.round, provider: batch.provider, model: found.model, estimatedTokens: estimate.tokens,
          requests: estimate.requests, providerBatches: Math.max(1, Math.ceil(estimate.requests / maxRequests)), estimator: estimate.estimator,
        });
      }
      const granted = await grantInOrder(db, batch.provider, found.model, found.budget);
      const mine = await getAdmission(db, batch.id, batch.round);
      if (!mine) throw new Error(`the permit of batch ${batch.id} round ${batch.round} vanished`);
      const detail = { round: batch.round, budget: budgetName, estimatedTokens: mine.estimatedTokens, estimator: mine.estimator };
      if (mine.admittedAt) {
        await markAdmitted(db, batch.id, detail);
        return { granted, mine, position: undefined };
      }
      const position = await queuePosition(db, batch.id, batch.round);
      await markQueued(db, batch.id, { ...detail, position });
      return { granted, mine, position };
    });
    await wakeGranted(deps, decided.granted, batch.id);
    const { mine } = decided;
    const base = { budget: budgetName, estimatedTokens: mine.estimatedTokens, estimator: mine.estimator };
    if (mine.admittedAt) return { admitted: true, status: 'pending', retryAfterMs: 0, ...base };
    const untilAllowed = mine.notBefore ? mine.notBefore.getTime() - Date.now() : 0;
    const retryAfterMs = untilAllowed > 0 ? Math.min(config.recheckMs, Math.max(untilAllowed, 100)) : config.recheckMs;
    return { admitted: false, status: 'queued', position: decided.position, retryAfterMs, ...base };
  };
}


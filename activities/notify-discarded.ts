import type { SubjectKind } from '../domain/types';
import { getBatch, getBatchForUpdate, markDiscarded, markHandlerDispatched } from '../db/batches-store';
import { getDeadLetter } from '../db/dead-letters-store';
import { getJob, setJobStatus } from '../db/jobs-store';
import { inTransaction } from '../db/pool';
import { withAppSearchPath } from '../db/schema';
import { releaseBatchPermits } from './admission';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';
import { registered } from './handlers';

/** Final failure after a discard: the subject is marked failed and its failure handler told, once. */
export function createNotifyDiscarded(deps: ActivityDeps) {
  const { pool } = deps;
  return async function notifyDiscarded(input: { subjectKind: SubjectKind; subjectId: string; deadLetterId: string }): Promise<void> {
    const letter = await getDeadLetter(pool, input.deadLetterId);
    if (!letter) throw permanentFailure('UnknownDeadLetter', `dead letter ${input.deadLetterId} does not exist`);
    if (input.subjectKind === 'batch') {
      await inTransaction(pool, async (db) => {
        const batch = await getBatchForUpdate(db, input.subjectId);
        if (!batch) throw permanentFailure('UnknownBatch', `batch ${input.subjectId} does not exist`);
        await markDiscarded(db, batch.id, { code: `discarded_${letter.step}`, message: letter.errorMessage });
        if (batch.handlerDispatchedAt) return;
        const handler = batch.handlerName ? registered(deps.handlers, batch.handlerName) : undefined;
        const fresh = await getBatchForUpdate(db, batch.id);
        if (handler?.onFailure && fresh) await withAppSearchPath(db, () => handler.onFailure!({ batch: fresh, deadLetter: letter, db }));
        await markHandlerDispatched(db, batch.id, 'discarded');
      });
      const discarded = await getBatch(pool, input.subjectId);
      if (discarded) await releaseBatchPermits(deps, discarded.id, discarded.round);
      return;
    }
    const job = await getJob(pool, input.subjectId);
    if (!job) throw permanentFailure('UnknownJob', `job ${input.subjectId} does not exist`);
    if (job.status === 'discarded') return;
    await registered(deps.jobExecutors, job.jobType)?.onFailure?.(job, letter);
    await setJobStatus(pool, job.id, 'discarded', { failureCode: letter.errorClass, failureMessage: letter.errorMessage });
  };
}

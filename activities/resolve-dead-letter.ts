import { getDeadLetter, resolveDeadLetter } from '../db/dead-letters-store';
import { inTransaction } from '../db/pool';
import { startNewRound } from '../db/steps-store';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';

/** Marks the dead letter resolved; a requeue also starts a fresh try count for the step. Idempotent. */
export function createResolveDeadLetterRecord(deps: ActivityDeps) {
  return async function resolveDeadLetterRecord(input: {
    deadLetterId: string; action: 'requeue' | 'discard'; resolvedBy?: string; note?: string;
  }): Promise<void> {
    await inTransaction(deps.pool, async (db) => {
      const letter = await getDeadLetter(db, input.deadLetterId);
      if (!letter) throw permanentFailure('UnknownDeadLetter', `dead letter ${input.deadLetterId} does not exist`);
      const changed = await resolveDeadLetter(db, letter.id, input);
      if (changed && input.action === 'requeue') await startNewRound(db, letter.subjectKind, letter.subjectId, letter.step);
    });
  };
}

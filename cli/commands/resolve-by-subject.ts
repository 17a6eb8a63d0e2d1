/** `batches requeue|discard <batchId>` and `jobs requeue|discard <jobId>`: act on the subject's open dead letter. */
import { NotApplicableError } from '../../client/errors';
import { requireUuid } from '../../client/ids';
import type { SubjectKind } from '../../domain/types';
import { DECISION_OPTIONS, RETRY_OPTIONS, operatorName, retryFlags, str, type CommandSpec } from '../command';

export function resolveBySubject(kind: SubjectKind, action: 'requeue' | 'discard'): CommandSpec {
  const ends = kind === 'batch' ? "the batch ends failed and its handler's onFailure runs" : "the job ends discarded and its executor's onFailure runs";
  return {
    name: action,
    summary: action === 'requeue' ? `run the ${kind}'s dead-lettered step again with a fresh try count` : `discard the ${kind}'s dead-lettered step: ${ends}`,
    args: [`${kind}Id`],
    options: action === 'requeue' ? { ...RETRY_OPTIONS, ...DECISION_OPTIONS } : DECISION_OPTIONS,
    async run(ctx, [rawId], values) {
      const id = requireUuid(kind, rawId);
      const retry = action === 'requeue' ? retryFlags(values) : undefined;
      const client = await ctx.client();
      const { deadLetter } = kind === 'batch' ? await client.getBatch(id) : await client.getJob(id);
      if (!deadLetter) throw new NotApplicableError(`${kind} ${id} has no open dead letter: nothing to ${action}`);
      const admin = await ctx.admin();
      const decision = { resolvedBy: operatorName(ctx), note: str(values, 'note') };
      const result = action === 'requeue'
        ? await admin.requeueDeadLetter(deadLetter.id, { ...decision, retry })
        : await admin.discardDeadLetter(deadLetter.id, decision);
      return {
        json: { [`${kind}Id`]: id, step: deadLetter.step, ...result },
        human: () => action === 'requeue'
          ? `requeued step ${deadLetter.step} of ${kind} ${id} (dead letter ${result.deadLetterId}, was at ${deadLetter.tryCount} tries)`
          : `discarded step ${deadLetter.step} of ${kind} ${id} (dead letter ${result.deadLetterId}): ${ends}`,
      };
    },
  };
}

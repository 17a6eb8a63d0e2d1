import type { SubjectKind } from './types';

/**
 * The commands that resolve a dead letter by the id of its batch or job, as Temporal Web's details and the CLI show
 * them: each one complete on one line, so it runs as pasted.
 */
export function deadLetterCommands(kind: SubjectKind, subjectId: string): { requeue: string; discard: string } {
  const group = kind === 'batch' ? 'batches' : 'jobs';
  return { requeue: `npx batchkeeper ${group} requeue ${subjectId}`, discard: `npx batchkeeper ${group} discard ${subjectId}` };
}

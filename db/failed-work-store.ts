import type { SubjectKind } from '../domain/types';
import { rowLimit } from './dead-letters-store';
import { queryUnprepared, type Queryable } from './queryable';

/** SQL over the failed_work view: failed and dead-lettered batches and jobs with error, try count and timestamps. */

export interface FailedWorkRecord {
  subjectKind: SubjectKind;
  subjectId: string;
  workflowId: string;
  provider: string | null;
  typeOrHandler: string | null;
  status: string;
  step: string | null;
  tryCount: number | null;
  errorClass: string | null;
  errorMessage: string | null;
  firstFailureAt: Date | null;
  lastFailureAt: Date | null;
  deadLettered: boolean;
  deadLetterId: string | null;
}

export interface FailedWorkFilter {
  subjectKind?: SubjectKind;
  deadLetteredOnly?: boolean;
  provider?: string;
  typeOrHandler?: string;
  limit?: number;
}

export async function listFailedWork(db: Queryable, filter: FailedWorkFilter = {}): Promise<FailedWorkRecord[]> {
  const { rows } = await queryUnprepared(
    db,
    `SELECT * FROM failed_work
      WHERE ($1::text IS NULL OR subject_kind = $1) AND (NOT $2 OR dead_lettered)
        AND ($3::text IS NULL OR provider = $3) AND ($4::text IS NULL OR type_or_handler = $4)
      ORDER BY last_failure_at DESC NULLS LAST LIMIT $5`,
    [filter.subjectKind ?? null, filter.deadLetteredOnly ?? false, filter.provider ?? null, filter.typeOrHandler ?? null, rowLimit(filter.limit)],
  );
  return rows.map((row) => ({
    subjectKind: row.subject_kind,
    subjectId: row.subject_id,
    workflowId: row.workflow_id,
    provider: row.provider,
    typeOrHandler: row.type_or_handler,
    status: row.status,
    step: row.step,
    tryCount: row.try_count,
    errorClass: row.error_class,
    errorMessage: row.error_message,
    firstFailureAt: row.first_failure_at,
    lastFailureAt: row.last_failure_at,
    deadLettered: row.dead_lettered,
    deadLetterId: row.dead_letter_id,
  }));
}

import type { StepName, SubjectKind } from '../domain/types';
import { appendEvent } from './events-store';
import type { Queryable } from './queryable';

/** SQL for dead letters. Rows are never deleted: requeue and discard record a resolution instead. */

export interface DeadLetterRecord {
  id: string;
  subjectKind: SubjectKind;
  subjectId: string;
  workflowId: string;
  step: StepName;
  tryCount: number;
  errorClass: string;
  errorMessage: string;
  errorStack: string | null;
  nonRetryable: boolean;
  firstFailureAt: Date;
  lastFailureAt: Date;
  createdAt: Date;
  resolution: 'requeued' | 'discarded' | null;
  resolvedAt: Date | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  /** Batch provider / handler name, or job type; joined in for filtering and display. */
  provider: string | null;
  typeOrHandler: string | null;
}

export interface DeadLetterFilter {
  subjectKind?: SubjectKind;
  subjectId?: string;
  step?: StepName;
  errorClass?: string;
  provider?: string;
  typeOrHandler?: string;
  createdBefore?: Date;
  createdAfter?: Date;
  /** Include requeued and discarded ones (history). Default: open only. */
  includeResolved?: boolean;
  limit?: number;
}

const SELECT = `SELECT d.*, b.provider, COALESCE(b.handler_name, j.job_type) AS type_or_handler
  FROM dead_letters d
  LEFT JOIN batches b ON d.subject_kind = 'batch' AND b.id = d.subject_id
  LEFT JOIN jobs j ON d.subject_kind = 'job' AND j.id = d.subject_id`;

function toRecord(row: Record<string, any>): DeadLetterRecord {
  return {
    id: row.id,
    subjectKind: row.subject_kind,
    subjectId: row.subject_id,
    workflowId: row.workflow_id,
    step: row.step,
    tryCount: row.try_count,
    errorClass: row.error_class,
    errorMessage: row.error_message,
    errorStack: row.error_stack,
    nonRetryable: row.non_retryable,
    firstFailureAt: row.first_failure_at,
    lastFailureAt: row.last_failure_at,
    createdAt: row.created_at,
    resolution: row.resolution,
    resolvedAt: row.resolved_at,
    resolvedBy: row.resolved_by,
    resolutionNote: row.resolution_note,
    provider: row.provider ?? null,
    typeOrHandler: row.type_or_handler ?? null,
  };
}

/** Opens a dead letter, or returns the open one for this subject (a retried activity must not open two). */
export async function openDeadLetter(
  db: Queryable,
  letter: {
    id: string; subjectKind: SubjectKind; subjectId: string; workflowId: string; step: StepName; tryCount: number;
    errorClass: string; errorMessage: string; errorStack: string | null; nonRetryable: boolean; firstFailureAt: Date;
  },
): Promise<DeadLetterRecord> {
  const { rowCount } = await db.query(
    `INSERT INTO dead_letters (id, subject_kind, subject_id, workflow_id, step, try_count, error_class, error_message,
                               error_stack, non_retryable, first_failure_at, last_failure_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
     ON CONFLICT (subject_kind, subject_id) WHERE resolution IS NULL DO NOTHING`,
    [
      letter.id, letter.subjectKind, letter.subjectId, letter.workflowId, letter.step, letter.tryCount, letter.errorClass,
      letter.errorMessage.slice(0, 8000), letter.errorStack?.slice(0, 16000) ?? null, letter.nonRetryable, letter.firstFailureAt,
    ],
  );
  if (rowCount) {
    await appendEvent(db, letter.subjectKind, letter.subjectId, 'dead_lettered', {
      detail: { deadLetterId: letter.id, step: letter.step, tryCount: letter.tryCount, errorClass: letter.errorClass },
    });
  }
  const open = await getOpenDeadLetter(db, letter.subjectKind, letter.subjectId);
  if (!open) throw new Error(`dead letter for ${letter.subjectKind} ${letter.subjectId} vanished while being opened`);
  return open;
}

export async function getDeadLetter(db: Queryable, id: string): Promise<DeadLetterRecord | null> {
  const { rows } = await db.query(`${SELECT} WHERE d.id = $1`, [id]);
  return rows[0] ? toRecord(rows[0]) : null;
}

export async function getOpenDeadLetter(db: Queryable, kind: SubjectKind, subjectId: string): Promise<DeadLetterRecord | null> {
  const { rows } = await db.query(`${SELECT} WHERE d.subject_kind = $1 AND d.subject_id = $2 AND d.resolution IS NULL`, [kind, subjectId]);
  return rows[0] ? toRecord(rows[0]) : null;
}

/** Records the admin decision. Returns false when the dead letter was already resolved (nothing changes). */
export async function resolveDeadLetter(
  db: Queryable,
  id: string,
  resolution: { action: 'requeue' | 'discard'; resolvedBy?: string; note?: string },
): Promise<boolean> {
  const { rows } = await db.query(
    `UPDATE dead_letters SET resolution = $2, resolved_at = now(), resolved_by = $3, resolution_note = $4
      WHERE id = $1 AND resolution IS NULL
      RETURNING subject_kind, subject_id, step`,
    [id, resolution.action === 'requeue' ? 'requeued' : 'discarded', resolution.resolvedBy ?? null, resolution.note ?? null],
  );
  if (!rows[0]) return false;
  await appendEvent(db, rows[0].subject_kind, rows[0].subject_id, `dead_letter_${rows[0].step}_${resolution.action}d`, {
    detail: { deadLetterId: id, resolvedBy: resolution.resolvedBy ?? null },
  });
  return true;
}

function whereClause(filter: DeadLetterFilter): { sql: string; params: unknown[] } {
  const conditions: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    conditions.push(sql.replace('?', `$${params.length}`));
  };
  if (!filter.includeResolved) conditions.push('d.resolution IS NULL');
  if (filter.subjectKind) add('d.subject_kind = ?', filter.subjectKind);
  if (filter.subjectId) add('d.subject_id = ?', filter.subjectId);
  if (filter.step) add('d.step = ?', filter.step);
  if (filter.errorClass) add('d.error_class = ?', filter.errorClass);
  if (filter.provider) add('b.provider = ?', filter.provider);
  if (filter.typeOrHandler) add('COALESCE(b.handler_name, j.job_type) = ?', filter.typeOrHandler);
  if (filter.createdBefore) add('d.created_at < ?', filter.createdBefore);
  if (filter.createdAfter) add('d.created_at > ?', filter.createdAfter);
  return { sql: conditions.length ? `WHERE ${conditions.join(' AND ')}` : '', params };
}

/** 1-10,000 rows, 100 when not a whole number (the client rejects those first). */
export function rowLimit(limit: unknown): number {
  return typeof limit === 'number' && Number.isInteger(limit) ? Math.min(Math.max(limit, 1), 10_000) : 100;
}

/** Oldest first, so `peek` and `next` work the queue in arrival order. */
export async function listDeadLetters(db: Queryable, filter: DeadLetterFilter = {}): Promise<DeadLetterRecord[]> {
  const where = whereClause(filter);
  const { rows } = await db.query(`${SELECT} ${where.sql} ORDER BY d.created_at, d.id LIMIT $${where.params.length + 1}`, [
    ...where.params, rowLimit(filter.limit),
  ]);
  return rows.map(toRecord);
}

export async function countDeadLetters(db: Queryable, filter: DeadLetterFilter = {}): Promise<number> {
  const where = whereClause(filter);
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM (${SELECT} ${where.sql}) x`, where.params);
  return rows[0].n;
}

/** Open dead letters per step (what the worker's metrics gauge shows). */
export async function countOpenDeadLettersByStep(db: Queryable): Promise<Partial<Record<StepName, number>>> {
  const { rows } = await db.query(`SELECT step, count(*)::int AS n FROM dead_letters WHERE resolution IS NULL GROUP BY step`);
  return Object.fromEntries(rows.map((row) => [row.step, row.n]));
}

import type { SubjectKind } from '../domain/types';
import type { Queryable } from './queryable';
import { SqlParams, type StatementPart } from './sql-params';

/** SQL for the append-only event log of batches and jobs. */

export interface EventRecord {
  id: string;
  at: Date;
  kind: string;
  fromStatus: string | null;
  toStatus: string | null;
  detail: Record<string, unknown>;
}

export interface EventChange {
  fromStatus?: string | null;
  toStatus?: string | null;
  detail?: Record<string, unknown>;
}

/** Appends one event; `also` (a CTE body, e.g. a step's success) is written in the same statement. */
export async function appendEvent(
  db: Queryable,
  subjectKind: SubjectKind,
  subjectId: string,
  kind: string,
  change: EventChange = {},
  also: StatementPart = () => 'SELECT 1',
): Promise<void> {
  const params = new SqlParams();
  await db.query(`WITH also_0 AS (${also(params)}) ${eventSql(params, subjectKind, subjectId, kind, change)}`, params.values);
}

/** The INSERT of one event, as a statement of its own or as the last part of a larger one. */
export function eventSql(params: SqlParams, subjectKind: SubjectKind, subjectId: string, kind: string, change: EventChange = {}): string {
  return `INSERT INTO event_log (subject_kind, subject_id, kind, from_status, to_status, detail)
          VALUES (${params.add(subjectKind)}, ${params.add(subjectId)}::uuid, ${params.add(kind)}, ${params.add(change.fromStatus ?? null)},
                  ${params.add(change.toStatus ?? null)}, ${params.add(change.detail ?? {})}::jsonb)`;
}

/**
 * The body of a CTE that logs one status change per row of `source` (a CTE with from_status and status columns)
 * whose two statuses differ.
 */
export function statusChangeEventSql(
  params: SqlParams,
  subjectKind: SubjectKind,
  subjectId: string,
  kind: string,
  detail: Record<string, unknown>,
  source: string,
): string {
  return `INSERT INTO event_log (subject_kind, subject_id, kind, from_status, to_status, detail)
          SELECT ${params.add(subjectKind)}::text, ${params.add(subjectId)}::uuid, ${params.add(kind)}::text, from_status, status,
                 ${params.add(detail)}::jsonb
            FROM ${source} WHERE from_status IS DISTINCT FROM status`;
}

export async function listEvents(db: Queryable, subjectKind: SubjectKind, subjectId: string): Promise<EventRecord[]> {
  const { rows } = await db.query(
    `SELECT id, at, kind, from_status, to_status, detail FROM event_log
      WHERE subject_kind = $1 AND subject_id = $2 ORDER BY id`,
    [subjectKind, subjectId],
  );
  return rows.map((row) => ({
    id: String(row.id),
    at: row.at,
    kind: row.kind,
    fromStatus: row.from_status,
    toStatus: row.to_status,
    detail: row.detail,
  }));
}

import type { ClientBase, Pool, QueryResult } from 'pg';

/** A pool or a client (inside a transaction: ours, or the app's own): store functions accept either. */
export type Queryable = Pool | ClientBase;

/**
 * Runs a statement unprepared (a config object, which db/prepared-client.ts passes through). For statements whose
 * best plan depends on the values: pages (`position > $n ... LIMIT $m`) and optional filters (`$n IS NULL OR ...`).
 * PostgreSQL switches a prepared statement to a generic plan after five runs; for a page of a 120,000-request batch
 * that plan started parallel workers, 20 ms a page instead of 0.3 ms, and a handler reading 2 results a page stalled.
 */
export function queryUnprepared(db: Queryable, text: string, values: unknown[]): Promise<QueryResult> {
  return db.query({ text, values });
}

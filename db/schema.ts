import type { ClientBase } from 'pg';

/** batchkeeper's tables live in a schema of their own, apart from the app's tables in the same database. */
export const DEFAULT_SCHEMA = 'batchkeeper';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema name, checked: it goes into SQL as an identifier, which PostgreSQL cannot take as a parameter. */
export function checkedSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new Error(`schema ${JSON.stringify(schema)} must be 1-63 characters of a-z, 0-9 and _, not starting with a digit`);
  return schema;
}

/** `SET search_path TO "<schema>"` for a checked schema name. */
export function searchPathSql(schema: string): string {
  return `SET search_path TO "${checkedSchema(schema)}"`;
}

/**
 * Runs `fn` with the session's default search path (the app's) inside the caller's transaction, then puts
 * batchkeeper's back: app code (a completion handler) writes the app's own tables through batchkeeper's
 * connection. When `fn` throws, the transaction rolls back, and the SET LOCAL with it.
 */
export async function withAppSearchPath<T>(db: ClientBase, fn: () => Promise<T>): Promise<T> {
  const { rows } = await db.query(`SELECT current_setting('search_path') AS ours`);
  await db.query('SET LOCAL search_path TO DEFAULT');
  const result = await fn();
  await db.query(`SELECT set_config('search_path', $1, true)`, [rows[0].ours]);
  return result;
}

/**
 * Runs `fn` with batchkeeper's schema as the search path inside the app's own transaction (submitBatch joining it),
 * under a savepoint: on failure both the writes and the search path are rolled back and the app's transaction can
 * go on; on success the app's search path is restored.
 */
export async function inAppTransaction<T>(db: ClientBase, schema: string, fn: () => Promise<T>): Promise<T> {
  const { rows } = await db.query(`SELECT current_setting('search_path') AS theirs`);
  await db.query('SAVEPOINT batchkeeper_write');
  try {
    await db.query(`SELECT set_config('search_path', $1, true)`, [`"${checkedSchema(schema)}"`]);
    const result = await fn();
    await db.query('RELEASE SAVEPOINT batchkeeper_write');
    await db.query(`SELECT set_config('search_path', $1, true)`, [rows[0].theirs]);
    return result;
  } catch (error) {
    await db.query('ROLLBACK TO SAVEPOINT batchkeeper_write').catch(() => undefined);
    throw error;
  }
}

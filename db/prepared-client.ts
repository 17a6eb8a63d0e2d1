import { Client, type QueryResult } from 'pg';

/**
 * A pg Client that runs each parameterised statement as a named (prepared) statement of its connection, so
 * PostgreSQL parses and plans a statement text once per connection instead of on every call. The step statements are
 * large CTEs run several times per batch, and their parsing and planning were a third of PostgreSQL's CPU per batch.
 *
 * Only `query(text, values[, callback])` with at least one value is prepared (what the stores and pg-pool's
 * `pool.query` send); other forms (no values, config objects, COPY streams) pass through unchanged.
 *
 * A column added by a migration while a worker runs changes the row type of a prepared `SELECT *` / `RETURNING *`,
 * which PostgreSQL refuses ("cached plan must not change result type"). The statement is then forgotten (the next
 * call prepares it afresh) and, outside a transaction block, run again at once; inside one the error stands, the
 * transaction rolls back and the step's retry runs with the fresh statement.
 */
export class PreparingClient extends Client {
  /** Statement text → name of its prepared statement on this connection. */
  private readonly statementNames = new Map<string, string>();
  private nextStatement = 1;

  // pg's overloads cannot be restated one by one; this keeps their behaviour for every form it does not prepare.
  override query(...args: unknown[]): any {
    const [text, values, callback] = args;
    if (typeof text !== 'string' || !Array.isArray(values) || values.length === 0 || (callback !== undefined && typeof callback !== 'function')) {
      return (super.query as (...rest: unknown[]) => unknown)(...args);
    }
    const result = this.runPrepared(text, values);
    if (!callback) return result;
    result.then((rows) => (callback as (error: Error | null, result?: QueryResult) => void)(null, rows), callback as (error: Error) => void);
    return undefined;
  }

  private async runPrepared(text: string, values: unknown[]): Promise<QueryResult> {
    const name = this.nameFor(text);
    if (!name) return super.query(text, values);
    try {
      return await super.query({ name, text, values });
    } catch (error) {
      if (!isStalePreparedStatement(error)) throw error;
      this.statementNames.delete(text);
      // 'I': the failed statement ran on its own (not in a transaction block), so running it again changes nothing else.
      if ((this as unknown as { _txStatus?: string })._txStatus !== 'I') throw error;
      return super.query({ name: this.nameFor(text)!, text, values });
    }
  }

  /** Undefined once the connection holds MAX_STATEMENTS: further texts run unprepared (bounded server memory). */
  private nameFor(text: string): string | undefined {
    let name = this.statementNames.get(text);
    if (!name && this.statementNames.size < MAX_STATEMENTS) {
      name = `bk_${this.nextStatement++}`;
      this.statementNames.set(text, name);
    }
    return name;
  }
}

/** Prepared statements kept per connection; the product has a few dozen statement texts. */
const MAX_STATEMENTS = 500;

function isStalePreparedStatement(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === '0A000' && /cached plan must not change result type/.test(message ?? '');
}

import { Pool, type PoolConfig } from 'pg';
import { PreparingClient } from './prepared-client';

export interface PoolOptions extends Partial<PoolConfig> {
  /**
   * Run parameterised statements as prepared statements of each connection (db/prepared-client.ts). Default true;
   * turn off behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

/** One pool per process; activities, the client and scripts share it. */
export function createPool(databaseUrl: string, { preparedStatements = true, ...options }: PoolOptions = {}): Pool {
  const pool = new Pool({
    connectionString: databaseUrl, max: 10, idleTimeoutMillis: 30_000, ...(preparedStatements ? { Client: PreparingClient } : {}), ...options,
  });
  // An idle client that loses its server (PostgreSQL restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** Runs fn in one transaction; rolls back on any error so nothing is half-written. */
export async function inTransaction<T>(pool: Pool, fn: (client: import('pg').PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

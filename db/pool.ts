import { Pool, type PoolConfig } from 'pg';

/** One pool per process; activities, the client and scripts share it. */
export function createPool(databaseUrl: string, options: Partial<PoolConfig> = {}): Pool {
  const pool = new Pool({ connectionString: databaseUrl, max: 10, idleTimeoutMillis: 30_000, ...options });
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

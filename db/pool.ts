import { Client, Pool, type PoolClient, type PoolConfig } from 'pg';
import { PreparingClient } from './prepared-client';
import { DEFAULT_SCHEMA, searchPathSql } from './schema';

export interface PoolOptions extends Partial<PoolConfig> {
  /** The schema of batchkeeper's tables (default `batchkeeper`): every connection of the pool has it as its search path. */
  schema?: string;
  /**
   * Run parameterised statements as prepared statements of each connection (db/prepared-client.ts). Default true;
   * turn off behind a pooler that cannot keep them (PgBouncer in transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

const schemas = new WeakMap<Pool, string>();

/**
 * One pool per process; activities, the client and scripts share it. Its connections find batchkeeper's tables (and
 * only those) without a schema prefix: the search path is set when each connection opens (not in the startup options,
 * so `SET search_path TO DEFAULT` still gives the app's own path: handlers write the app's tables through it).
 */
export function createPool(databaseUrl: string, { preparedStatements = true, schema = DEFAULT_SCHEMA, ...options }: PoolOptions = {}): Pool {
  const pool = new Pool({
    connectionString: databaseUrl, max: 10, idleTimeoutMillis: 30_000, Client: clientWithSearchPath(preparedStatements ? PreparingClient : Client, schema), ...options,
  });
  schemas.set(pool, schema);
  // An idle client that loses its server (PostgreSQL restart) must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  // A checked-out client whose backend dies emits 'error' on the client itself, and with no listener that kills the
  // process; its pending query already rejects with the cause, and pg-pool discards the client when it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** A client class whose connect() resolves once the connection's search path is batchkeeper's schema. */
function clientWithSearchPath(Base: typeof Client, schema: string): typeof Client {
  const setPath = searchPathSql(schema);
  return class SearchPathClient extends Base {
    // pg-pool connects with a callback; scripts may await the promise form. Both wait for the SET.
    override connect(...args: unknown[]): any {
      const callback = args[0] as ((error: Error | null, client?: Client) => void) | undefined;
      const connected = super.connect().then(() => super.query(setPath)).then(() => this);
      if (!callback) return connected;
      connected.then((client) => callback(null, client), (error: Error) => callback(error));
      return undefined;
    }
  } as typeof Client;
}

/** The schema a pool made by createPool serves. */
export function schemaOf(pool: Pool): string {
  return schemas.get(pool) ?? DEFAULT_SCHEMA;
}

/** Runs fn in one transaction; rolls back on any error so nothing is half-written. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
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

import path from 'node:path';
import pg from 'pg';
import { checkedSchema, DEFAULT_SCHEMA } from './schema';

/** The folder above db/: the project in a checkout, dist/ in the installed package. */
const CODE_ROOT = path.resolve(__dirname, '..');
/** The SQL migrations ship beside dist/ in the package (package.json `files`). */
export const MIGRATIONS_DIR = path.join(path.basename(CODE_ROOT) === 'dist' ? path.dirname(CODE_ROOT) : CODE_ROOT, 'migrations');

/**
 * Applies pending migrations with node-pg-migrate (SQL files in migrations/) in batchkeeper's schema, which it
 * creates if needed. Its advisory lock makes concurrent callers (several workers starting at once) safe.
 */
export async function migrateDatabase(databaseUrl: string, options: { schema?: string } = {}): Promise<string[]> {
  return runMigrations(databaseUrl, { schema: options.schema, direction: 'up' });
}

/**
 * Runs the migrations up or down (`count` of them; all by default) on a connection of its own, closed before this
 * returns: node-pg-migrate does not wait for the connections it opens to close, nor listen for their errors.
 */
export async function runMigrations(
  databaseUrl: string, options: { schema?: string; direction: 'up' | 'down'; count?: number },
): Promise<string[]> {
  const schema = checkedSchema(options.schema ?? DEFAULT_SCHEMA);
  const { runner } = await import('node-pg-migrate');
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const applied = await runner({
      dbClient: client,
      dir: MIGRATIONS_DIR,
      schema,
      createSchema: true,
      migrationsSchema: schema,
      migrationsTable: 'batchkeeper_migrations',
      direction: options.direction,
      count: options.count ?? Infinity,
      checkOrder: true,
      advisoryLockMode: 'wait',
      log: () => undefined,
    } as Parameters<typeof runner>[0]);
    return applied.map((migration) => migration.name);
  } finally {
    await client.end();
  }
}

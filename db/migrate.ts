import path from 'node:path';

const MIGRATIONS_DIR = path.resolve(__dirname, '..', 'migrations');

/**
 * Applies pending migrations with node-pg-migrate (SQL files in migrations/). Its advisory lock makes concurrent
 * callers (several workers starting at once) safe.
 */
export async function migrateDatabase(databaseUrl: string): Promise<string[]> {
  const { runner } = await import('node-pg-migrate');
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    migrationsTable: 'batchkeeper_migrations',
    direction: 'up',
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: () => undefined,
  } as Parameters<typeof runner>[0]);
  return applied.map((migration) => migration.name);
}

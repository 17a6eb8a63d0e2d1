/** A database of its own for tests that work on the schema itself (migrations, COPY), dropped at the end. */
import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';
import { createPool } from '../../db/pool';
import { createDatabase, databaseUrlWithName, dropDatabase } from '../../tools/dev/postgres';

export interface ScratchDatabase {
  url: string;
  pool: Pool;
  drop(): Promise<void>;
}

export async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const adminUrl = process.env.BATCHKEEPER_TEST_PG_ADMIN_URL;
  if (!adminUrl) throw new Error('BATCHKEEPER_TEST_PG_ADMIN_URL is not set: run tests through `npm test`');
  const name = `${prefix}_${randomUUID().slice(0, 8)}`;
  await createDatabase(adminUrl, name);
  const url = databaseUrlWithName(adminUrl, name);
  const pool = createPool(url, { max: 4 });
  return {
    url,
    pool,
    async drop() {
      await pool.end();
      await dropDatabase(adminUrl, name);
    },
  };
}

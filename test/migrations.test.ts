/**
 * The migrations build batchkeeper's tables in a schema of their own (default `batchkeeper`, configurable) and
 * nothing elsewhere; what the database accepts as a status is what domain/statuses.ts says; down undoes everything.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { insertBatch } from '../db/batches-store';
import { migrateDatabase, runMigrations } from '../db/migrate';
import { createPool, inTransaction } from '../db/pool';
import { BATCH_STATUSES, JOB_STATUSES, REQUEST_STATUSES } from '../domain/statuses';
import { createScratchDatabase, type ScratchDatabase } from './support/scratch-database';

/** Every migration file, in the order they apply. */
const MIGRATIONS = readdirSync(path.join(__dirname, '..', 'migrations')).filter((name) => name.endsWith('.sql')).map((name) => name.replace(/\.sql$/, '')).sort();

let db: ScratchDatabase;

before(async () => {
  db = await createScratchDatabase('bk_migrations');
});
after(async () => db?.drop());

async function tablesBySchema(): Promise<Record<string, string[]>> {
  const { rows } = await db.pool.query(
    `SELECT table_schema, array_agg(table_name::text ORDER BY table_name) AS tables FROM information_schema.tables
      WHERE table_schema NOT IN ('pg_catalog', 'information_schema') GROUP BY table_schema`,
  );
  return Object.fromEntries(rows.map((row) => [row.table_schema, row.tables]));
}

/** The values a CHECK (col IN (...)) constraint of `table` allows. */
async function checkedValues(schema: string, table: string, column: string): Promise<string[]> {
  const { rows } = await db.pool.query(
    `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE c.contype = 'c' AND n.nspname = $1 AND t.relname = $2 AND pg_get_constraintdef(c.oid) LIKE '%' || $3 || '%ANY%'`,
    [schema, table, column],
  );
  assert.equal(rows.length, 1, `one CHECK on ${table}.${column}`);
  return [...rows[0].def.matchAll(/'([a-z_]+)'::text/g)].map((match) => match[1]);
}

test('everything goes into the configured schema, the app\'s public schema stays empty', async () => {
  assert.deepEqual(await migrateDatabase(db.url), MIGRATIONS);
  assert.deepEqual(await migrateDatabase(db.url), [], 'a second run applies nothing');
  assert.deepEqual(await migrateDatabase(db.url, { schema: 'reviews_bk' }), MIGRATIONS, 'a second schema is independent');
  const tables = await tablesBySchema();
  const expected = [
    'admission_budgets', 'admissions', 'batch_requests', 'batches', 'batchkeeper_migrations', 'dead_letters', 'event_log', 'failed_work', 'jobs',
    'provider_batches', 'request_outcomes', 'request_results', 'step_attempts', 'webhook_deliveries',
  ];
  assert.deepEqual(tables.batchkeeper, expected);
  assert.deepEqual(tables.reviews_bk, expected);
  assert.equal(tables.public, undefined, 'no table in public');
  await assert.rejects(migrateDatabase(db.url, { schema: 'Robert"); DROP TABLE x; --' }), /schema .* must be/);
});

test('the statuses the database accepts are the ones domain/statuses.ts declares', async () => {
  assert.deepEqual(await checkedValues('batchkeeper', 'batches', 'status'), [...BATCH_STATUSES]);
  assert.deepEqual(await checkedValues('batchkeeper', 'provider_batches', 'status'), [...BATCH_STATUSES]);
  assert.deepEqual(await checkedValues('batchkeeper', 'jobs', 'status'), [...JOB_STATUSES]);
  assert.deepEqual(await checkedValues('batchkeeper', 'request_results', 'status'), REQUEST_STATUSES.filter((status) => status !== 'pending'));
});

test('migrating down removes every table, view and function of the schema', async () => {
  assert.deepEqual(await runMigrations(db.url, { schema: 'reviews_bk', direction: 'down' }), [...MIGRATIONS].reverse());
  assert.deepEqual((await tablesBySchema()).reviews_bk, ['batchkeeper_migrations']);
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'reviews_bk'`);
  assert.equal(rows[0].n, 0);
});

test('request bodies are kept out of the row: updating a request\'s bookkeeping does not copy its body', async () => {
  const pool = createPool(db.url, { max: 1 });
  try {
    const id = randomUUID();
    const WORDS = ['batch', 'provider', 'result', 'review', 'summary', 'customer', 'order', 'shipping', 'quality', 'price'];
    // 400 requests of about 3.7 KB of varied text: compressed to about 1.6 KB each, they would stay inline without
    // migration 1700000000015 and the heap would hold about 800 KB, and twice that after one UPDATE of every row.
    const requests = Array.from({ length: 400 }, (_, index) => ({
      customId: `r-${index}`,
      params: { messages: [{ role: 'user', content: Array.from({ length: 350 }, (_, word) => `${WORDS[(index + word * 7) % WORDS.length]}${(index * 31 + word * 17) % 997}`).join(' ') }] },
    }));
    await inTransaction(pool, (client) => insertBatch(client, {
      id, idempotencyKey: `toast-${id}`, workflowId: `batch-${id}`, provider: 'openai', model: 'gpt-4o-mini', handlerName: null, metadata: {},
      pollScheduleMs: [60_000], maxAgeMs: 86_400_000, requests,
    }));
    await pool.query('UPDATE batch_requests SET attempts = attempts + 1 WHERE batch_id = $1', [id]);
    const { rows } = await pool.query(
      `SELECT pg_relation_size(c.oid) AS heap, pg_relation_size(c.reltoastrelid) AS toast FROM pg_class c
        WHERE c.oid = 'batch_requests'::regclass`,
    );
    assert.ok(Number(rows[0].toast) > 400 * 1024, `the bodies are in TOAST (${rows[0].toast} bytes)`);
    assert.ok(Number(rows[0].heap) < 160 * 1024, `the heap holds narrow rows only, also after an UPDATE (${rows[0].heap} bytes)`);
  } finally {
    await pool.end();
  }
});

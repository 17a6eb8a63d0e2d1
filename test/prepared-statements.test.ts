/**
 * The pool's prepared statements (db/prepared-client.ts) on a real PostgreSQL: parameterised statements are prepared
 * once per connection, and a migration that changes a prepared statement's row type does not wedge a running worker.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Pool, PoolClient } from 'pg';
import { randomUUID } from 'node:crypto';
import { insertBatch } from '../db/batches-store';
import { iterateRequestBodies, listRequests } from '../db/requests-store';
import { migrateDatabase } from '../db/migrate';
import { createPool, inTransaction } from '../db/pool';
import { createScratchDatabase, type ScratchDatabase } from './support/scratch-database';

let db: ScratchDatabase;
let single: Pool;

before(async () => {
  db = await createScratchDatabase('bk_prepared');
  await migrateDatabase(db.url);
  // One connection, so every call below meets the statements the calls before it prepared.
  single = createPool(db.url, { max: 1 });
});
after(async () => {
  await single?.end();
  await db?.drop();
});

async function preparedOnConnection(client: PoolClient): Promise<string[]> {
  const { rows } = await client.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements ORDER BY prepare_time');
  return rows.map((row) => row.statement);
}

test('a parameterised statement is prepared once per connection and keeps returning its own results', async () => {
  const client = await single.connect();
  try {
    const text = 'SELECT $1::int + 1 AS n';
    assert.equal((await client.query(text, [1])).rows[0].n, 2);
    assert.equal((await client.query(text, [41])).rows[0].n, 42);
    const prepared = await preparedOnConnection(client);
    assert.equal(prepared.filter((statement) => statement === text).length, 1, `prepared: ${JSON.stringify(prepared)}`);
    // No values: sent as a simple query, nothing prepared.
    await client.query('SELECT 1 AS one');
    assert.ok(!(await preparedOnConnection(client)).includes('SELECT 1 AS one'));
  } finally {
    client.release();
  }
});

test('pool.query callbacks and promises both get the prepared result', async () => {
  const viaCallback = await new Promise<number>((resolve, reject) => {
    single.query('SELECT $1::int * 2 AS n', [21], (error, result) => (error ? reject(error) : resolve(result.rows[0].n)));
  });
  assert.equal(viaCallback, 42);
  await assert.rejects(single.query('SELECT $1::int / 0 AS n', [1]), /division by zero/);
  assert.equal((await single.query('SELECT $1::int / 1 AS n', [7])).rows[0].n, 7, 'the connection is usable after an error');
});

test('a column added while the statement is prepared: rerun at once outside a transaction, retried inside one', async () => {
  await single.query('CREATE TABLE widened (id int PRIMARY KEY, a text)');
  await single.query('INSERT INTO widened VALUES (1, $1)', ['x']);
  const select = 'SELECT * FROM widened WHERE id = $1';
  assert.deepEqual((await single.query(select, [1])).rows, [{ id: 1, a: 'x' }]);

  await single.query(`ALTER TABLE widened ADD COLUMN b text DEFAULT 'new'`);
  // PostgreSQL refuses the prepared statement now (its row type changed); on its own it is prepared again and rerun.
  assert.deepEqual((await single.query(select, [1])).rows, [{ id: 1, a: 'x', b: 'new' }]);

  await single.query(`ALTER TABLE widened ADD COLUMN c int DEFAULT 3`);
  // Inside a transaction the error stands (the transaction is aborted and rolls back) ...
  await assert.rejects(
    inTransaction(single, async (client) => {
      await client.query('UPDATE widened SET a = $2 WHERE id = $1', [1, 'changed']);
      return client.query(select, [1]);
    }),
    /cached plan must not change result type/,
  );
  // ... nothing of it was written, and the retry of the whole transaction succeeds with the fresh statement.
  const rows = await inTransaction(single, async (client) => (await client.query(select, [1])).rows);
  assert.deepEqual(rows, [{ id: 1, a: 'x', b: 'new', c: 3 }]);
});

test('preparedStatements: false sends every statement unprepared', async () => {
  const plain = createPool(db.url, { max: 1, preparedStatements: false });
  try {
    const client = await plain.connect();
    try {
      assert.equal((await client.query('SELECT $1::int + 2 AS n', [1])).rows[0].n, 3);
      assert.deepEqual(await preparedOnConnection(client), []);
    } finally {
      client.release();
    }
  } finally {
    await plain.end();
  }
});

test('pages of requests and results run unprepared: a generic plan must not serve every page', async () => {
  const batchId = randomUUID();
  await inTransaction(single, (client) => insertBatch(client, {
    id: batchId, idempotencyKey: batchId, workflowId: `batch-${batchId}`, provider: 'openai', model: 'model-x', handlerName: null,
    metadata: {}, pollScheduleMs: [1000], maxAgeMs: 60_000,
    requests: Array.from({ length: 14 }, (_, index) => ({ customId: `page-${index}`, params: { n: index } })),
  }));
  await single.query('UPDATE batch_requests SET part = 0, provider_custom_id = custom_id WHERE batch_id = $1', [batchId]);
  const client = await single.connect();
  try {
    // More than five runs of each text on one connection: where PostgreSQL would switch a prepared one to a generic plan.
    const seen: string[] = [];
    for (let afterPosition = -1; ;) {
      const page = await listRequests(client, batchId, { afterPosition, limit: 2 });
      seen.push(...page.map((request) => request.customId));
      if (page.length < 2) break;
      afterPosition = page[page.length - 1].position;
    }
    assert.equal(seen.length, 14);
    let bodies = 0;
    for await (const _body of iterateRequestBodies(client, batchId, { round: 1, part: 0 }, 2)) bodies += 1;
    assert.equal(bodies, 14);
    const prepared = await preparedOnConnection(client);
    assert.deepEqual(prepared.filter((statement) => /FROM request_outcomes|FROM batch_requests/.test(statement)), [],
      'no paging statement is prepared');
  } finally {
    client.release();
  }
});

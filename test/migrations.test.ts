/**
 * Migrations that move data: a database with outcomes stored the old way (in batch_requests) is migrated up and the
 * request_outcomes view shows the same outcomes; migrated down, batch_requests holds them again.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createScratchDatabase, type ScratchDatabase } from './support/scratch-database';

let db: ScratchDatabase;

async function migrate(direction: 'up' | 'down', count?: number): Promise<string[]> {
  const { runner } = await import('node-pg-migrate');
  const applied = await runner({
    databaseUrl: db.url,
    dir: path.join(__dirname, '..', 'migrations'),
    migrationsTable: 'batchkeeper_migrations',
    direction,
    count,
    checkOrder: true,
    log: () => undefined,
  } as Parameters<typeof runner>[0]);
  return applied.map((migration) => migration.name);
}

before(async () => {
  db = await createScratchDatabase('bk_migrations');
});
after(async () => db?.drop());

test('outcomes stored in batch_requests survive the move to request_results, and the way back', async () => {
  assert.deepEqual(await migrate('up', 3), ['1700000000001_batches', '1700000000002_operations', '1700000000003_parts_rounds_cost']);
  const batchId = randomUUID();
  await db.pool.query(
    `INSERT INTO batches (id, idempotency_key, workflow_id, provider, model, request_count, poll_schedule_ms, max_age_ms, round)
     VALUES ($1, $2, $3, 'openai', 'gpt-4o-mini', 3, '{60000}', 86400000, 2)`,
    [batchId, `key-${batchId}`, `batch-${batchId}`],
  );
  // Request 0 succeeded in round 1, request 1 errored in round 2 (after a resubmission), request 2 is pending in round 2.
  await db.pool.query(
    `INSERT INTO batch_requests (batch_id, custom_id, position, params, status, result, error_code, error_message, retryable,
                                 input_tokens, output_tokens, completed_at, provider_custom_id, round, part, attempts, cost_usd)
     VALUES ($1, 'a', 0, '{}', 'succeeded', '{"text":"hi\\tthere"}', NULL, NULL, NULL, 10, 20, now(), 'a', 1, 0, 1, 0.00012),
            ($1, 'b', 1, '{}', 'errored', NULL, 'server_error', 'boom', true, NULL, NULL, now(), 'b', 2, 0, 2, NULL),
            ($1, 'c', 2, '{}', 'pending', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'c', 2, 0, 2, NULL)`,
    [batchId],
  );

  assert.deepEqual(await migrate('up'), ['1700000000004_request_results']);
  const { rows: outcomes } = await db.pool.query(
    `SELECT custom_id, round, status, result, error_code, error_message, retryable, input_tokens, output_tokens, cost_usd::text
       FROM request_outcomes WHERE batch_id = $1 ORDER BY position`,
    [batchId],
  );
  assert.deepEqual(outcomes, [
    { custom_id: 'a', round: 1, status: 'succeeded', result: { text: 'hi\tthere' }, error_code: null, error_message: null, retryable: null, input_tokens: 10, output_tokens: 20, cost_usd: '0.00012000' },
    { custom_id: 'b', round: 2, status: 'errored', result: null, error_code: 'server_error', error_message: 'boom', retryable: true, input_tokens: null, output_tokens: null, cost_usd: null },
    { custom_id: 'c', round: 2, status: 'pending', result: null, error_code: null, error_message: null, retryable: null, input_tokens: null, output_tokens: null, cost_usd: null },
  ]);
  const { rows: stored } = await db.pool.query('SELECT count(*)::int AS n FROM request_results WHERE batch_id = $1', [batchId]);
  assert.equal(stored[0].n, 2, 'one result row per finished request; the pending one has none');

  assert.deepEqual(await migrate('down', 1), ['1700000000004_request_results']);
  const { rows: restored } = await db.pool.query(
    'SELECT custom_id, status, result, error_code, retryable, input_tokens, cost_usd::text FROM batch_requests WHERE batch_id = $1 ORDER BY position',
    [batchId],
  );
  assert.deepEqual(restored, [
    { custom_id: 'a', status: 'succeeded', result: { text: 'hi\tthere' }, error_code: null, retryable: null, input_tokens: 10, cost_usd: '0.00012000' },
    { custom_id: 'b', status: 'errored', result: null, error_code: 'server_error', retryable: true, input_tokens: null, cost_usd: null },
    { custom_id: 'c', status: 'pending', result: null, error_code: null, retryable: null, input_tokens: null, cost_usd: null },
  ]);
});

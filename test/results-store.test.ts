/**
 * The COPY path of the results step, on a real PostgreSQL: text that COPY treats specially comes back byte for byte,
 * and an aborted COPY leaves nothing behind and the connection usable.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { insertBatch } from '../db/batches-store';
import { migrateDatabase } from '../db/migrate';
import { inTransaction } from '../db/pool';
import { partPositions } from '../db/requests-store';
import { insertUnplannedLeftovers, outcomeTotals, ResultsCopy, type StoredOutcome } from '../db/results-store';
import { createScratchDatabase, type ScratchDatabase } from './support/scratch-database';

let db: ScratchDatabase;

before(async () => {
  db = await createScratchDatabase('bk_results');
  await migrateDatabase(db.url);
});
after(async () => db?.drop());

async function newBatch(requests: number): Promise<string> {
  const id = randomUUID();
  await inTransaction(db.pool, (client) => insertBatch(client, {
    id, idempotencyKey: id, workflowId: `batch-${id}`, provider: 'openai', model: 'gpt-4o-mini', handlerName: null, metadata: {},
    pollScheduleMs: [60_000], maxAgeMs: 86_400_000,
    requests: Array.from({ length: requests }, (_, index) => ({ customId: `r-${index}`, params: { index } })),
  }));
  await db.pool.query(`UPDATE batch_requests SET provider_custom_id = 'p-' || custom_id, part = 0 WHERE batch_id = $1`, [id]);
  return id;
}

const TRICKY = [
  'tab\there', 'new\nline', 'carriage\rreturn', 'back\\slash', '\\N', 'ends with backslash\\', 'quote " and \' ', 'emoji 🚀 ünïcödé',
  '\\.', 'nul-free but \u0001 control',
];

test('outcomes written through COPY read back exactly, including text COPY escapes', async () => {
  const batchId = await newBatch(TRICKY.length + 1);
  const positions = await partPositions(db.pool, { batchId, round: 1, part: 0 });
  assert.equal(positions.size, TRICKY.length + 1);
  await inTransaction(db.pool, async (client) => {
    const copy = new ResultsCopy(client, batchId, 1);
    for (const [index, text] of TRICKY.entries()) {
      const outcome: StoredOutcome = index % 2 === 0
        ? { customId: `p-r-${index}`, status: 'succeeded', resultJson: JSON.stringify({ content: text, nested: [text] }), inputTokens: index, outputTokens: 7 }
        : { customId: `p-r-${index}`, status: 'errored', errorCode: 'server_error', errorMessage: text, retryable: index % 3 === 0 };
      await copy.write(positions.get(outcome.customId)!, outcome);
    }
    await copy.write(positions.get(`p-r-${TRICKY.length}`)!, { status: 'missing', errorCode: 'missing', errorMessage: 'no line', retryable: true });
    await copy.end();
  });
  assert.equal(await insertUnplannedLeftovers(db.pool, batchId, { status: 'missing', message: 'no line' }), 0, 'every request has a part');
  const { rows } = await db.pool.query(
    'SELECT custom_id, status, result, error_message, retryable, input_tokens FROM request_outcomes WHERE batch_id = $1 ORDER BY position',
    [batchId],
  );
  for (const [index, text] of TRICKY.entries()) {
    const row = rows[index];
    if (index % 2 === 0) {
      assert.deepEqual(row.result, { content: text, nested: [text] }, `result ${index}`);
      assert.equal(row.input_tokens, index);
    } else {
      assert.equal(row.error_message, text, `error message ${index}`);
      assert.equal(row.retryable, index % 3 === 0);
    }
  }
  assert.equal(rows[TRICKY.length].status, 'missing', 'the request without a line is missing');
  const totals = await outcomeTotals(db.pool, batchId);
  assert.deepEqual(totals.counts, { succeeded: TRICKY.length / 2, errored: TRICKY.length / 2, missing: 1 });
  assert.equal(totals.inputTokens, [0, 2, 4, 6, 8].reduce((a, b) => a + b, 0));
  assert.equal(totals.outputTokens, 7 * TRICKY.length / 2);
  assert.equal(totals.costUsd, null, 'unpriced');
});

test('requests that belong to no part get a leftover outcome from the safety net', async () => {
  const batchId = await newBatch(2);
  await db.pool.query(`UPDATE batch_requests SET part = NULL WHERE batch_id = $1 AND position = 1`, [batchId]);
  assert.equal(await insertUnplannedLeftovers(db.pool, batchId, { status: 'expired', message: 'batch expired' }), 1);
  const totals = await outcomeTotals(db.pool, batchId);
  assert.deepEqual(totals.counts, { pending: 1, expired: 1 });
});

test('an aborted COPY stores nothing and leaves the connection usable for the rollback', async () => {
  const batchId = await newBatch(3);
  const failure = new Error('download cut');
  await assert.rejects(inTransaction(db.pool, async (client) => {
    const copy = new ResultsCopy(client, batchId, 1);
    await copy.write(0, { status: 'succeeded', resultJson: JSON.stringify({ ok: true }) });
    await copy.abort(failure);
    throw failure;
  }), /download cut/);
  const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM request_results WHERE batch_id = $1', [batchId]);
  assert.equal(rows[0].n, 0);
  const { rows: statuses } = await db.pool.query('SELECT DISTINCT status FROM request_outcomes WHERE batch_id = $1', [batchId]);
  assert.deepEqual(statuses, [{ status: 'pending' }]);
});

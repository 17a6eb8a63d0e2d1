/**
 * The app's side: in one transaction it stores its own row (an import job) and the batch, so both exist or neither;
 * after the commit it starts the batch's workflow, waits for it, and prints what the handler wrote.
 */
import { Client, Connection } from '@temporalio/client';
import { BatchkeeperClient, createPool, loadConfig, type SubmitBatchInput } from 'batchkeeper';
import pg from 'pg';
import { REVIEW_SUMMARIES_DDL } from './handlers.js';

const REVIEWS = ['Arrived quickly, works well.', 'Battery died after a week.', 'Great value for the price.'];

async function main(): Promise<void> {
  const { database, temporal, providers } = loadConfig(process.env, ['database', 'temporal', 'providers']);
  const appPool = new pg.Pool({ connectionString: database.url });
  await appPool.query(REVIEW_SUMMARIES_DDL);
  await appPool.query('CREATE TABLE IF NOT EXISTS review_imports (id serial PRIMARY KEY, batch_id uuid NOT NULL)');

  const connection = await Connection.connect(temporal.connectionOptions);
  const client = new BatchkeeperClient({
    client: new Client({ connection, namespace: temporal.namespace }),
    pool: createPool(database.url, { schema: database.schema }),
    taskQueue: temporal.taskQueue,
    providerLimits: providers.limits,
  });
  const input: SubmitBatchInput = {
    provider: 'openai',
    model: 'gpt-4o-mini',
    handler: 'summarise-reviews',
    pollScheduleMs: [500],
    requests: REVIEWS.map((text, index) => ({
      customId: `review-${index + 1}`,
      params: { max_tokens: 60, messages: [{ role: 'user', content: `Summarise this review in five words: ${text}` }] },
    })),
  };

  const db = await appPool.connect();
  let batchId: string;
  try {
    await db.query('BEGIN');
    ({ batchId } = await client.submitBatch(input, { transaction: db }));
    await db.query('INSERT INTO review_imports (batch_id) VALUES ($1)', [batchId]);
    await db.query('COMMIT');
  } catch (error) {
    await db.query('ROLLBACK');
    throw error;
  } finally {
    db.release();
  }
  await client.startBatchWorkflow(batchId);
  const batch = await client.waitForBatch(batchId, { timeoutMs: 120_000 });
  const { rows } = await appPool.query('SELECT review_id, summary FROM review_summaries WHERE batch_id = $1 ORDER BY review_id', [batchId]);
  console.log(JSON.stringify({ batchId, status: batch.status, summaries: rows }));
  await connection.close();
  await client.pool.end();
  await appPool.end();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

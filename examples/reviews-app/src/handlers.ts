import type { BatchHandlerRegistry } from 'batchkeeper/worker';

/** The app's table, in its own schema (public), apart from batchkeeper's tables. */
export const REVIEW_SUMMARIES_DDL = `CREATE TABLE IF NOT EXISTS review_summaries (
  batch_id uuid NOT NULL, review_id text NOT NULL, summary text NOT NULL, PRIMARY KEY (batch_id, review_id))`;

/**
 * The completion handler: every succeeded request's answer becomes a row of the app's table. Writes go through
 * `db`, the transaction that records the dispatch, so they happen exactly once.
 */
export const handlers: BatchHandlerRegistry = {
  'summarise-reviews': {
    async onComplete({ batch, results, db }) {
      for await (const request of results({ status: 'succeeded' })) {
        const answer = request.result as { choices?: { message?: { content?: string } }[] };
        await db.query('INSERT INTO review_summaries (batch_id, review_id, summary) VALUES ($1, $2, $3)', [
          batch.id, request.customId, answer.choices?.[0]?.message?.content ?? '',
        ]);
      }
    },
  },
};

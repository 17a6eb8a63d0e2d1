/**
 * Completion handlers for tests: each invocation is written, through the dispatch transaction, to the app table
 * public.handler_calls (the handler writes it unqualified, on the app's search path)
 * with a unique key per batch, so a second effect would be caught by the primary key.
 */
import type { Pool } from 'pg';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../../activities/handlers';

export const HANDLER_CALLS_DDL = `CREATE TABLE IF NOT EXISTS public.handler_calls (
  batch_id uuid PRIMARY KEY, outcome text NOT NULL, succeeded int NOT NULL, errored int NOT NULL, expired int NOT NULL,
  canceled int NOT NULL, missing int NOT NULL, results_seen int NOT NULL, unknown_ids int NOT NULL, malformed_lines int NOT NULL,
  duplicate_lines int NOT NULL, called_at timestamptz NOT NULL DEFAULT now())`;

export const FAILURE_CALLS_DDL = `CREATE TABLE IF NOT EXISTS public.failure_calls (
  batch_id uuid PRIMARY KEY, step text NOT NULL, error_class text NOT NULL, called_at timestamptz NOT NULL DEFAULT now())`;

export async function createRecordingTables(pool: Pool): Promise<void> {
  await pool.query(HANDLER_CALLS_DDL);
  await pool.query(FAILURE_CALLS_DDL);
}

export const handlers: BatchHandlerRegistry = {
  record: {
    async onComplete({ batch, outcome, summary, results, db }) {
      let seen = 0;
      for await (const _result of results({ pageSize: 2 })) seen += 1;
      await db.query(HANDLER_CALLS_DDL);
      await db.query(
        `INSERT INTO handler_calls (batch_id, outcome, succeeded, errored, expired, canceled, missing, results_seen, unknown_ids,
                                    malformed_lines, duplicate_lines)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [batch.id, outcome, summary.succeeded, summary.errored, summary.expired, summary.canceled, summary.missing, seen,
          summary.unknownIds, summary.malformedLines, summary.duplicateLines],
      );
    },
    async onFailure({ batch, deadLetter, db }) {
      await db.query(FAILURE_CALLS_DDL);
      await db.query(`INSERT INTO failure_calls (batch_id, step, error_class) VALUES ($1, $2, $3)`, [
        batch.id, deadLetter.step, deadLetter.errorClass,
      ]);
    },
  },
};

export const jobExecutors: JobExecutorRegistry = {};

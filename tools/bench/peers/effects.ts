/**
 * The completion handler every system of the side-by-side runs (ours through BATCHKEEPER_HANDLERS_MODULE, the peers
 * through the same handler contract): it reads every result and records one effect per batch in
 * `public.bench_effects`, through the dispatch transaction. A second effect for the same batch is counted (effects
 * + 1), not rejected, so duplicate handler effects show up in the counts.
 */
import type { Pool } from 'pg';
import type { BatchHandlerRegistry } from '../../../activities/handlers';

export const EFFECT_HANDLER = 'bench-effect';

export const EFFECTS_DDL = `CREATE TABLE IF NOT EXISTS public.bench_effects (
  system text NOT NULL, batch_id uuid NOT NULL, effects integer NOT NULL DEFAULT 1, outcome text NOT NULL,
  succeeded integer NOT NULL, results_seen integer NOT NULL,
  first_at timestamptz NOT NULL DEFAULT clock_timestamp(), last_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (system, batch_id))`;

export async function createEffectsTable(pool: Pool): Promise<void> {
  await pool.query(EFFECTS_DDL);
}

const system = () => process.env.BENCH_EFFECTS_SYSTEM ?? 'unknown';

export const handlers: BatchHandlerRegistry = {
  [EFFECT_HANDLER]: {
    async onComplete({ batch, outcome, summary, results, db }) {
      let seen = 0;
      for await (const _request of results({ pageSize: 100 })) seen += 1;
      await db.query(
        `INSERT INTO public.bench_effects (system, batch_id, outcome, succeeded, results_seen) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (system, batch_id) DO UPDATE SET effects = public.bench_effects.effects + 1, last_at = clock_timestamp()`,
        [system(), batch.id, outcome, summary.succeeded, seen],
      );
    },
  },
};

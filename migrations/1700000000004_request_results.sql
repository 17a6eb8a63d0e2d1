-- Up Migration

-- Outcomes leave batch_requests for an insert-only table, one row per request per round, loaded with COPY. Writing a
-- 100,000-line results file by updating the indexed request rows in place cost PostgreSQL several times the work of
-- writing the rows once; an insert-only table also keeps the outcome of every round (the try history of a request).
-- No foreign key on purpose: its per-row check would slow the COPY; rows are only written by the results step for
-- requests it has just read from batch_requests.
CREATE TABLE request_results (
  batch_id       uuid NOT NULL,
  round          integer NOT NULL,
  position       integer NOT NULL,
  status         text NOT NULL CHECK (status IN ('succeeded', 'errored', 'expired', 'canceled', 'missing')),
  result         jsonb,
  error_code     text,
  error_message  text,
  retryable      boolean,
  input_tokens   integer,
  output_tokens  integer,
  -- Only for outcomes stored before this migration (their batch has no price columns); new rows are priced through
  -- batches.*_price_per_mtok_usd in request_outcomes.
  legacy_cost_usd numeric(18, 8),
  completed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_id, round, position)
);

-- The price a batch's tokens were charged at (per million tokens, batch discount applied); null when unpriced.
ALTER TABLE batches
  ADD COLUMN input_price_per_mtok_usd numeric(18, 8),
  ADD COLUMN output_price_per_mtok_usd numeric(18, 8);

INSERT INTO request_results (batch_id, round, position, status, result, error_code, error_message, retryable,
                             input_tokens, output_tokens, legacy_cost_usd, completed_at)
SELECT batch_id, round, position, status, result, error_code, error_message, retryable, input_tokens, output_tokens,
       cost_usd, COALESCE(completed_at, now())
  FROM batch_requests WHERE status <> 'pending';

ALTER TABLE batch_requests
  DROP COLUMN status, DROP COLUMN result, DROP COLUMN error_code, DROP COLUMN error_message, DROP COLUMN retryable,
  DROP COLUMN input_tokens, DROP COLUMN output_tokens, DROP COLUMN completed_at, DROP COLUMN cost_usd;

-- Each request with the outcome of its current round ('pending' until there is one): what batch_requests held before.
CREATE VIEW request_outcomes AS
  SELECT r.batch_id, r.custom_id, r.position, r.params, r.provider_custom_id, r.round, r.part, r.attempts,
         r.dead_lettered_at, COALESCE(o.status, 'pending') AS status, o.result, o.error_code, o.error_message,
         o.retryable, o.input_tokens, o.output_tokens,
         CASE WHEN b.input_price_per_mtok_usd IS NULL THEN o.legacy_cost_usd
              ELSE round((COALESCE(o.input_tokens, 0) * b.input_price_per_mtok_usd
                          + COALESCE(o.output_tokens, 0) * b.output_price_per_mtok_usd) / 1000000, 8) END AS cost_usd,
         o.completed_at
    FROM batch_requests r
    JOIN batches b ON b.id = r.batch_id
    LEFT JOIN request_results o ON o.batch_id = r.batch_id AND o.round = r.round AND o.position = r.position;

-- Down Migration
DROP VIEW request_outcomes;
ALTER TABLE batch_requests
  ADD COLUMN status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'succeeded', 'errored', 'expired', 'canceled', 'missing')),
  ADD COLUMN result jsonb, ADD COLUMN error_code text, ADD COLUMN error_message text, ADD COLUMN retryable boolean,
  ADD COLUMN input_tokens integer, ADD COLUMN output_tokens integer, ADD COLUMN completed_at timestamptz,
  ADD COLUMN cost_usd numeric(18, 8);
UPDATE batch_requests r
   SET status = o.status, result = o.result, error_code = o.error_code, error_message = o.error_message,
       retryable = o.retryable, input_tokens = o.input_tokens, output_tokens = o.output_tokens, completed_at = o.completed_at,
       cost_usd = CASE WHEN b.input_price_per_mtok_usd IS NULL THEN o.legacy_cost_usd
                       ELSE (COALESCE(o.input_tokens, 0) * b.input_price_per_mtok_usd
                             + COALESCE(o.output_tokens, 0) * b.output_price_per_mtok_usd) / 1000000 END
  FROM request_results o, batches b
 WHERE o.batch_id = r.batch_id AND o.round = r.round AND o.position = r.position AND b.id = r.batch_id;
ALTER TABLE batches DROP COLUMN input_price_per_mtok_usd, DROP COLUMN output_price_per_mtok_usd;
DROP TABLE request_results;

-- Up Migration
-- Full cost: cached input (cache reads), cache-write and reasoning tokens per request and per batch, and the prices
-- they were charged at. input_tokens stays every input token (cached and cache-written ones included), output_tokens
-- every output token (reasoning included); the new columns say how many of them were billed at another rate.
ALTER TABLE request_results
  ADD COLUMN cached_input_tokens integer,
  ADD COLUMN cache_write_tokens  integer,
  ADD COLUMN reasoning_tokens    integer;

ALTER TABLE batches
  ADD COLUMN cached_input_tokens bigint NOT NULL DEFAULT 0,
  ADD COLUMN cache_write_tokens  bigint NOT NULL DEFAULT 0,
  ADD COLUMN reasoning_tokens    bigint NOT NULL DEFAULT 0,
  -- Per million tokens, batch discount applied; null: billed at the input (output for reasoning) price.
  ADD COLUMN cached_input_price_per_mtok_usd numeric(18, 8),
  ADD COLUMN cache_write_price_per_mtok_usd  numeric(18, 8),
  ADD COLUMN reasoning_price_per_mtok_usd    numeric(18, 8);

-- The same view with the full cost; the token columns are added at the end (CREATE OR REPLACE keeps the others).
CREATE OR REPLACE VIEW request_outcomes AS
  SELECT r.batch_id, r.custom_id, r.position, r.params, r.provider_custom_id, r.round, r.part, r.attempts,
         r.dead_lettered_at, COALESCE(o.status, 'pending') AS status, o.result, o.error_code, o.error_message,
         o.retryable, o.input_tokens, o.output_tokens,
         round((GREATEST(COALESCE(o.input_tokens, 0) - COALESCE(o.cached_input_tokens, 0) - COALESCE(o.cache_write_tokens, 0), 0)
                  * b.input_price_per_mtok_usd
                + COALESCE(o.cached_input_tokens, 0) * COALESCE(b.cached_input_price_per_mtok_usd, b.input_price_per_mtok_usd)
                + COALESCE(o.cache_write_tokens, 0) * COALESCE(b.cache_write_price_per_mtok_usd, b.input_price_per_mtok_usd)
                + GREATEST(COALESCE(o.output_tokens, 0) - COALESCE(o.reasoning_tokens, 0), 0) * b.output_price_per_mtok_usd
                + COALESCE(o.reasoning_tokens, 0) * COALESCE(b.reasoning_price_per_mtok_usd, b.output_price_per_mtok_usd)) / 1000000, 8) AS cost_usd,
         o.completed_at, o.cached_input_tokens, o.cache_write_tokens, o.reasoning_tokens
    FROM batch_requests r
    JOIN batches b ON b.id = r.batch_id
    LEFT JOIN request_results o ON o.batch_id = r.batch_id AND o.round = r.round AND o.position = r.position;

-- Down Migration
DROP VIEW request_outcomes;
CREATE VIEW request_outcomes AS
  SELECT r.batch_id, r.custom_id, r.position, r.params, r.provider_custom_id, r.round, r.part, r.attempts,
         r.dead_lettered_at, COALESCE(o.status, 'pending') AS status, o.result, o.error_code, o.error_message,
         o.retryable, o.input_tokens, o.output_tokens,
         round((COALESCE(o.input_tokens, 0) * b.input_price_per_mtok_usd
                + COALESCE(o.output_tokens, 0) * b.output_price_per_mtok_usd) / 1000000, 8) AS cost_usd,
         o.completed_at
    FROM batch_requests r
    JOIN batches b ON b.id = r.batch_id
    LEFT JOIN request_results o ON o.batch_id = r.batch_id AND o.round = r.round AND o.position = r.position;
ALTER TABLE batches
  DROP COLUMN cached_input_tokens, DROP COLUMN cache_write_tokens, DROP COLUMN reasoning_tokens,
  DROP COLUMN cached_input_price_per_mtok_usd, DROP COLUMN cache_write_price_per_mtok_usd, DROP COLUMN reasoning_price_per_mtok_usd;
ALTER TABLE request_results DROP COLUMN cached_input_tokens, DROP COLUMN cache_write_tokens, DROP COLUMN reasoning_tokens;

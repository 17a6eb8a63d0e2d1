-- Up Migration
-- The straggler fallback (client/validate-batch.ts `stragglers`): requests a provider batch has not answered by the
-- deadline or after a set time in progress are sent through the provider's synchronous API
-- (activities/complete-stragglers.ts). The batch keeps its policy; such an outcome is marked synchronous and priced
-- at the full (undiscounted) rate, which is stored on the row because the batch's own prices carry the discount.
ALTER TABLE batches ADD COLUMN stragglers jsonb;
ALTER TABLE request_results ADD COLUMN synchronous boolean NOT NULL DEFAULT false;
ALTER TABLE request_results ADD COLUMN cost_usd numeric;

-- The full-cost view of 1700000000010, where a synchronous outcome's own full-rate cost wins.
CREATE OR REPLACE VIEW request_outcomes AS
  SELECT r.batch_id, r.custom_id, r.position, r.params, r.provider_custom_id, r.round, r.part, r.attempts,
         r.dead_lettered_at, COALESCE(o.status, 'pending') AS status, o.result, o.error_code, o.error_message,
         o.retryable, o.input_tokens, o.output_tokens,
         COALESCE(o.cost_usd, round((GREATEST(COALESCE(o.input_tokens, 0) - COALESCE(o.cached_input_tokens, 0) - COALESCE(o.cache_write_tokens, 0), 0)
                  * b.input_price_per_mtok_usd
                + COALESCE(o.cached_input_tokens, 0) * COALESCE(b.cached_input_price_per_mtok_usd, b.input_price_per_mtok_usd)
                + COALESCE(o.cache_write_tokens, 0) * COALESCE(b.cache_write_price_per_mtok_usd, b.input_price_per_mtok_usd)
                + GREATEST(COALESCE(o.output_tokens, 0) - COALESCE(o.reasoning_tokens, 0), 0) * b.output_price_per_mtok_usd
                + COALESCE(o.reasoning_tokens, 0) * COALESCE(b.reasoning_price_per_mtok_usd, b.output_price_per_mtok_usd)) / 1000000, 8)) AS cost_usd,
         o.completed_at, o.cached_input_tokens, o.cache_write_tokens, o.reasoning_tokens,
         COALESCE(o.synchronous, false) AS synchronous
    FROM batch_requests r
    JOIN batches b ON b.id = r.batch_id
    LEFT JOIN request_results o ON o.batch_id = r.batch_id AND o.round = r.round AND o.position = r.position;

-- Down Migration
DROP VIEW request_outcomes;
CREATE VIEW request_outcomes AS
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
ALTER TABLE request_results DROP COLUMN cost_usd;
ALTER TABLE request_results DROP COLUMN synchronous;
ALTER TABLE batches DROP COLUMN stragglers;

-- Up Migration
-- Retention (BATCHKEEPER_RETENTION_DAYS, applied by the sweep): when a finished batch's request and result bodies
-- were dropped. Rows, statuses, try counts, tokens, costs and events stay.
ALTER TABLE batches ADD COLUMN bodies_purged_at timestamptz;
CREATE INDEX batches_unpurged_idx ON batches (handler_dispatched_at) WHERE bodies_purged_at IS NULL AND handler_dispatched_at IS NOT NULL;

-- Down Migration
DROP INDEX batches_unpurged_idx;
ALTER TABLE batches DROP COLUMN bodies_purged_at;

-- Up Migration
-- The upload pages one part's requests in position order (db/requests-store.ts iterateRequestBodies). Without an
-- index that matches, a fresh batch (no statistics yet) was planned on the (batch_id, round, provider_custom_id)
-- index: every page read and sorted the whole rest of the part, 45 s to page a 50,000-request batch of 4 KB rows.
CREATE INDEX batch_requests_part_position_idx ON batch_requests (batch_id, round, part, position);

-- Down Migration
DROP INDEX batch_requests_part_position_idx;

-- Up Migration

-- A logical batch may need several provider batches: parts (split by the provider's limits) and rounds (round 1 is
-- the first submission; later rounds resubmit requests that came back retryably errored, expired or missing).
CREATE TABLE provider_batches (
  batch_id           uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  round              integer NOT NULL CHECK (round >= 1),
  part               integer NOT NULL CHECK (part >= 0),
  -- Tag written to provider metadata so a lost create response can be found again.
  tag                text NOT NULL,
  request_count      integer NOT NULL CHECK (request_count > 0),
  provider_batch_id  text,
  status             text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed')),
  provider_status    text,
  request_counts     jsonb NOT NULL DEFAULT '{}'::jsonb,
  results_available  boolean NOT NULL DEFAULT false,
  failure_code       text,
  failure_message    text,
  submitted_at       timestamptz,
  ended_at           timestamptz,
  results_fetched_at timestamptz,
  PRIMARY KEY (batch_id, round, part)
);

ALTER TABLE batch_requests
  -- The id sent to the provider: the caller's id when it fits the provider's rules, else a mapped one.
  ADD COLUMN provider_custom_id text,
  ADD COLUMN round integer NOT NULL DEFAULT 1,
  ADD COLUMN part integer,
  -- Submissions of this request so far (its try count); resubmission stops at the batch's max_request_attempts.
  ADD COLUMN attempts integer NOT NULL DEFAULT 0,
  ADD COLUMN dead_lettered_at timestamptz,
  ADD COLUMN cost_usd numeric(18, 8);
CREATE UNIQUE INDEX batch_requests_provider_id_uq ON batch_requests (batch_id, round, provider_custom_id);

ALTER TABLE batches
  ADD COLUMN round integer NOT NULL DEFAULT 1,
  ADD COLUMN max_request_attempts integer NOT NULL DEFAULT 1 CHECK (max_request_attempts BETWEEN 1 AND 10),
  ADD COLUMN cost_usd numeric(18, 8),
  ADD COLUMN dead_lettered_requests integer NOT NULL DEFAULT 0;

-- Batches submitted before parts existed become one part of round 1 each, so their workflows carry on.
UPDATE batch_requests SET provider_custom_id = custom_id, part = 0;
INSERT INTO provider_batches (batch_id, round, part, tag, request_count, provider_batch_id, status, provider_status,
                              request_counts, submitted_at, ended_at, results_fetched_at)
SELECT id, 1, 0, id::text, request_count, provider_batch_id, CASE WHEN status = 'pending' THEN 'submitted' ELSE status END,
       provider_status, request_counts, submitted_at, ended_at, results_fetched_at
  FROM batches WHERE provider_batch_id IS NOT NULL;
UPDATE batch_requests r SET attempts = 1 FROM batches b WHERE b.id = r.batch_id AND b.provider_batch_id IS NOT NULL;

-- Down Migration
ALTER TABLE batches DROP COLUMN round, DROP COLUMN max_request_attempts, DROP COLUMN cost_usd, DROP COLUMN dead_lettered_requests;
DROP INDEX batch_requests_provider_id_uq;
ALTER TABLE batch_requests DROP COLUMN provider_custom_id, DROP COLUMN round, DROP COLUMN part, DROP COLUMN attempts,
  DROP COLUMN dead_lettered_at, DROP COLUMN cost_usd;
DROP TABLE provider_batches;

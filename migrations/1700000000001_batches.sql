-- Up Migration

-- One row per logical batch. The workflow carries only the id; everything else lives here.
CREATE TABLE batches (
  id                    uuid PRIMARY KEY,
  idempotency_key       text NOT NULL UNIQUE,
  workflow_id           text NOT NULL UNIQUE,
  provider              text NOT NULL,
  model                 text NOT NULL,
  status                text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed')),
  provider_batch_id     text,
  provider_status       text,
  handler_name          text,
  metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
  request_count         integer NOT NULL CHECK (request_count > 0),
  -- Provider-reported counts {total, processing, succeeded, errored, expired, canceled}.
  request_counts        jsonb NOT NULL DEFAULT '{}'::jsonb,
  poll_schedule_ms      integer[] NOT NULL,
  max_age_ms            bigint NOT NULL CHECK (max_age_ms > 0),
  poll_count            integer NOT NULL DEFAULT 0,
  last_polled_at        timestamptz,
  next_poll_at          timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  submitted_at          timestamptz,
  deadline_at           timestamptz,
  ended_at              timestamptz,
  results_fetched_at    timestamptz,
  handler_dispatched_at timestamptz,
  failed_at             timestamptz,
  failure_code          text,
  failure_message       text,
  input_tokens          bigint NOT NULL DEFAULT 0,
  output_tokens         bigint NOT NULL DEFAULT 0
);
-- A provider batch belongs to exactly one logical batch.
CREATE UNIQUE INDEX batches_provider_batch_uq ON batches (provider, provider_batch_id) WHERE provider_batch_id IS NOT NULL;
CREATE INDEX batches_status_idx ON batches (status);
CREATE INDEX batches_undispatched_idx ON batches (id) WHERE handler_dispatched_at IS NULL;

-- One row per request. Bodies live here and nowhere else (never in Temporal).
CREATE TABLE batch_requests (
  batch_id       uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  custom_id      text NOT NULL,
  position       integer NOT NULL,
  params         jsonb NOT NULL,
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'succeeded', 'errored', 'expired', 'canceled', 'missing')),
  result         jsonb,
  error_code     text,
  error_message  text,
  retryable      boolean,
  input_tokens   integer,
  output_tokens  integer,
  completed_at   timestamptz,
  PRIMARY KEY (batch_id, custom_id)
);
CREATE INDEX batch_requests_position_idx ON batch_requests (batch_id, position);

-- Append-only log of transitions for batches and jobs.
CREATE TABLE event_log (
  id           bigserial PRIMARY KEY,
  subject_kind text NOT NULL CHECK (subject_kind IN ('batch', 'job')),
  subject_id   uuid NOT NULL,
  at           timestamptz NOT NULL DEFAULT now(),
  kind         text NOT NULL,
  from_status  text,
  to_status    text,
  detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX event_log_subject_idx ON event_log (subject_kind, subject_id, id);

CREATE FUNCTION event_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'event_log is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER event_log_no_update BEFORE UPDATE OR DELETE ON event_log
  FOR EACH ROW EXECUTE FUNCTION event_log_append_only();

-- Down Migration
DROP TABLE event_log;
DROP FUNCTION event_log_append_only();
DROP TABLE batch_requests;
DROP TABLE batches;

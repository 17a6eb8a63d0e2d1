-- Up Migration
-- Every table lives in batchkeeper's own schema (BATCHKEEPER_PG_SCHEMA, default batchkeeper), which the migration
-- runner puts on the search path: names here are unqualified on purpose.

-- One row per logical batch. The workflow carries only the id; everything else lives here.
CREATE TABLE batches (
  id                    uuid PRIMARY KEY,
  idempotency_key       text NOT NULL UNIQUE,
  workflow_id           text NOT NULL UNIQUE,
  provider              text NOT NULL,
  model                 text NOT NULL,
  -- domain/statuses.ts BATCH_STATUSES (a test compares the two).
  status                text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed')),
  -- The first provider batch of the current round, for display; all of them are in provider_batches.
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
  output_tokens         bigint NOT NULL DEFAULT 0,
  -- Submission round: 1, then one more per resubmission of requests that failed retryably.
  round                 integer NOT NULL DEFAULT 1,
  max_request_attempts  integer NOT NULL DEFAULT 1 CHECK (max_request_attempts BETWEEN 1 AND 10),
  cost_usd              numeric(18, 8),
  dead_lettered_requests integer NOT NULL DEFAULT 0,
  -- The price the batch's tokens were charged at (per million tokens, batch discount applied); null when unpriced.
  input_price_per_mtok_usd  numeric(18, 8),
  output_price_per_mtok_usd numeric(18, 8),
  -- Result lines beyond one per request, over all rounds: ids never submitted, unparsable lines, repeated lines.
  unknown_ids           integer NOT NULL DEFAULT 0,
  malformed_lines       integer NOT NULL DEFAULT 0,
  duplicate_lines       integer NOT NULL DEFAULT 0
);
-- A provider batch belongs to exactly one logical batch.
CREATE UNIQUE INDEX batches_provider_batch_uq ON batches (provider, provider_batch_id) WHERE provider_batch_id IS NOT NULL;
CREATE INDEX batches_status_idx ON batches (status);
CREATE INDEX batches_undispatched_idx ON batches (created_at) WHERE handler_dispatched_at IS NULL;

-- One row per request. Bodies live here and nowhere else (never in Temporal).
CREATE TABLE batch_requests (
  batch_id           uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  custom_id          text NOT NULL,
  position           integer NOT NULL,
  params             jsonb NOT NULL,
  -- The id sent to the provider: the caller's id when it fits the provider's rules, else a mapped one.
  provider_custom_id text,
  round              integer NOT NULL DEFAULT 1,
  part               integer,
  -- Submissions of this request so far (its try count); resubmission stops at the batch's max_request_attempts.
  attempts           integer NOT NULL DEFAULT 0,
  dead_lettered_at   timestamptz,
  PRIMARY KEY (batch_id, custom_id)
);
CREATE INDEX batch_requests_position_idx ON batch_requests (batch_id, position);
CREATE UNIQUE INDEX batch_requests_provider_id_uq ON batch_requests (batch_id, round, provider_custom_id);

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

-- Outcomes: insert-only, one row per request per round, loaded with COPY (writing a results file by updating the
-- indexed request rows in place cost PostgreSQL several times the work of writing rows once). Every round's outcome
-- stays: the try history of a request. No foreign key on purpose: its per-row check would slow the COPY; rows are
-- only written by the results step for requests it has just read from batch_requests.
CREATE TABLE request_results (
  batch_id       uuid NOT NULL,
  round          integer NOT NULL,
  position       integer NOT NULL,
  -- domain/statuses.ts REQUEST_STATUSES without 'pending' (a pending request has no row).
  status         text NOT NULL CHECK (status IN ('succeeded', 'errored', 'expired', 'canceled', 'missing')),
  result         jsonb,
  error_code     text,
  error_message  text,
  retryable      boolean,
  input_tokens   integer,
  output_tokens  integer,
  completed_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_id, round, position)
);

-- Each request with the outcome of its current round ('pending' until there is one).
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

-- Generic async jobs (the compute-platform case): input is small JSON or a reference the executor resolves.
CREATE TABLE jobs (
  id               uuid PRIMARY KEY,
  idempotency_key  text NOT NULL UNIQUE,
  workflow_id      text NOT NULL UNIQUE,
  job_type         text NOT NULL,
  -- domain/statuses.ts JOB_STATUSES.
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'discarded')),
  input            jsonb,
  input_ref        text,
  output           jsonb,
  retry_policy     jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  started_at       timestamptz,
  finished_at      timestamptz,
  failure_code     text,
  failure_message  text
);
CREATE INDEX jobs_status_idx ON jobs (status);

-- Try count per step of a batch or job: attempt, last error, last attempt time.
CREATE TABLE step_attempts (
  subject_kind     text NOT NULL CHECK (subject_kind IN ('batch', 'job')),
  subject_id       uuid NOT NULL,
  step             text NOT NULL,
  -- Attempts in the current round (reset by a requeue); total_attempts never resets.
  attempt          integer NOT NULL DEFAULT 0,
  total_attempts   integer NOT NULL DEFAULT 0,
  rounds           integer NOT NULL DEFAULT 1,
  last_attempt_at  timestamptz,
  -- First failed attempt of the current round: a dead letter's "first failure time".
  first_failure_at timestamptz,
  last_error_class text,
  last_error       text,
  succeeded_at     timestamptz,
  PRIMARY KEY (subject_kind, subject_id, step)
);

-- Work that failed n times or met a non-retryable error. Rows are never deleted: resolution is recorded instead.
CREATE TABLE dead_letters (
  id                 uuid PRIMARY KEY,
  subject_kind       text NOT NULL CHECK (subject_kind IN ('batch', 'job')),
  subject_id         uuid NOT NULL,
  workflow_id        text NOT NULL,
  step               text NOT NULL,
  try_count          integer NOT NULL,
  error_class        text NOT NULL,
  error_message      text NOT NULL,
  error_stack        text,
  non_retryable      boolean NOT NULL DEFAULT false,
  first_failure_at   timestamptz NOT NULL,
  last_failure_at    timestamptz NOT NULL,
  created_at         timestamptz NOT NULL DEFAULT now(),
  resolution         text CHECK (resolution IN ('requeued', 'discarded')),
  resolved_at        timestamptz,
  resolved_by        text,
  resolution_note    text
);
-- At most one open dead letter per subject: a workflow parks on one step at a time.
CREATE UNIQUE INDEX dead_letters_open_uq ON dead_letters (subject_kind, subject_id) WHERE resolution IS NULL;
CREATE INDEX dead_letters_open_created_idx ON dead_letters (created_at) WHERE resolution IS NULL;

-- Failed and dead-lettered work in one place, for operators and the client's failedWork() API.
CREATE VIEW failed_work AS
  SELECT 'batch'::text AS subject_kind, b.id AS subject_id, b.workflow_id, b.provider AS provider, b.handler_name AS type_or_handler,
         b.status, d.step, COALESCE(d.try_count, s.attempt) AS try_count,
         COALESCE(d.error_class, b.failure_code) AS error_class, COALESCE(d.error_message, b.failure_message) AS error_message,
         d.first_failure_at, COALESCE(d.last_failure_at, b.failed_at) AS last_failure_at, (d.id IS NOT NULL) AS dead_lettered, d.id AS dead_letter_id
    FROM batches b
    LEFT JOIN dead_letters d ON d.subject_kind = 'batch' AND d.subject_id = b.id AND d.resolution IS NULL
    LEFT JOIN LATERAL (SELECT max(attempt) AS attempt FROM step_attempts sa WHERE sa.subject_kind = 'batch' AND sa.subject_id = b.id) s ON true
   WHERE d.id IS NOT NULL OR b.status IN ('failed', 'expired')
  UNION ALL
  SELECT 'job', j.id, j.workflow_id, NULL, j.job_type, j.status, d.step, COALESCE(d.try_count, s.attempt),
         COALESCE(d.error_class, j.failure_code), COALESCE(d.error_message, j.failure_message),
         d.first_failure_at, COALESCE(d.last_failure_at, j.finished_at), (d.id IS NOT NULL), d.id
    FROM jobs j
    LEFT JOIN dead_letters d ON d.subject_kind = 'job' AND d.subject_id = j.id AND d.resolution IS NULL
    LEFT JOIN LATERAL (SELECT max(attempt) AS attempt FROM step_attempts sa WHERE sa.subject_kind = 'job' AND sa.subject_id = j.id) s ON true
   WHERE d.id IS NOT NULL OR j.status IN ('failed', 'discarded');

-- Down Migration
DROP VIEW failed_work;
DROP TABLE dead_letters;
DROP TABLE step_attempts;
DROP TABLE jobs;
DROP TABLE event_log;
DROP FUNCTION event_log_append_only();
DROP VIEW request_outcomes;
DROP TABLE request_results;
DROP TABLE provider_batches;
DROP TABLE batch_requests;
DROP TABLE batches;

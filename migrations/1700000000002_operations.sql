-- Up Migration

-- Generic async jobs (the compute-platform case): input is small JSON or a reference the executor resolves.
CREATE TABLE jobs (
  id               uuid PRIMARY KEY,
  idempotency_key  text NOT NULL UNIQUE,
  workflow_id      text NOT NULL UNIQUE,
  job_type         text NOT NULL,
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

-- Up Migration
-- Admission control per provider and model (domain/admission.ts, db/admissions-store.ts). A permit is a row of
-- `admissions` that belongs to one round of one batch: it is taken in the transaction that locks its budget row, and
-- released when the round's provider batches end (or by the sweep), so a worker that dies never leaks one.

-- `queued`: waiting for admission (domain/statuses.ts BATCH_STATUSES; a test compares the two).
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
  CHECK (status IN ('pending', 'queued', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed'));
ALTER TABLE provider_batches DROP CONSTRAINT provider_batches_status_check;
ALTER TABLE provider_batches ADD CONSTRAINT provider_batches_status_check
  CHECK (status IN ('pending', 'queued', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed'));

-- One row per budget (provider, model or '*' for all models of the provider): what admissions lock (FOR UPDATE), so
-- two workers never admit past a budget. The limits are the worker's configuration, written on every admission.
CREATE TABLE admission_budgets (
  provider            text NOT NULL,
  model               text NOT NULL,
  max_enqueued_tokens bigint CHECK (max_enqueued_tokens > 0),
  max_requests        bigint CHECK (max_requests > 0),
  max_open_batches    integer CHECK (max_open_batches > 0),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, model)
);

-- A permit request per batch and round: waiting (admitted_at NULL), held (admitted, not released) or released.
CREATE TABLE admissions (
  batch_id             uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
  round                integer NOT NULL CHECK (round >= 1),
  provider             text NOT NULL,
  -- The budget's model key: the batch's model, or '*' when the budget covers every model of the provider.
  model                text NOT NULL,
  estimated_tokens     bigint NOT NULL CHECK (estimated_tokens >= 0),
  requests             integer NOT NULL CHECK (requests >= 0),
  provider_batches     integer NOT NULL CHECK (provider_batches >= 1),
  -- How the tokens were estimated: a tokenizer's name (o200k_base, cl100k_base) or chars/4.
  estimator            text NOT NULL,
  requested_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  admitted_at          timestamptz,
  released_at          timestamptz,
  -- After the provider refused the batch for a full queue: not admitted again before this time.
  not_before           timestamptz,
  queue_limit_failures integer NOT NULL DEFAULT 0,
  PRIMARY KEY (batch_id, round),
  FOREIGN KEY (provider, model) REFERENCES admission_budgets (provider, model),
  CHECK (released_at IS NULL OR admitted_at IS NOT NULL)
);
-- Waiting and held permits of one budget, oldest first: what every admission decision reads.
CREATE INDEX admissions_open_idx ON admissions (provider, model, requested_at, batch_id) WHERE released_at IS NULL;

-- Down Migration
DROP TABLE admissions;
DROP TABLE admission_budgets;
ALTER TABLE provider_batches DROP CONSTRAINT provider_batches_status_check;
ALTER TABLE provider_batches ADD CONSTRAINT provider_batches_status_check
  CHECK (status IN ('pending', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed'));
ALTER TABLE batches DROP CONSTRAINT batches_status_check;
ALTER TABLE batches ADD CONSTRAINT batches_status_check
  CHECK (status IN ('pending', 'submitted', 'in_progress', 'ended', 'canceled', 'expired', 'failed'));

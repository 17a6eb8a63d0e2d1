-- Up Migration
-- Webhook deliveries accepted by the webhook endpoint (client/webhook-server.ts), by the provider's webhook-id: a
-- delivery whose id is already here is a replay and is refused, across restarts of the endpoint too. Rows older than
-- the retention (far beyond the signature's timestamp tolerance, past which a replay is refused as stale anyway) are
-- pruned by the endpoint.
CREATE TABLE webhook_deliveries (
  webhook_id        text PRIMARY KEY,
  provider          text NOT NULL,
  event_type        text NOT NULL,
  provider_batch_id text,
  batch_id          uuid,
  -- received (claimed, being handled), signaled (the batch's workflow was woken), unknown_batch, not_running, ignored
  outcome           text NOT NULL DEFAULT 'received',
  received_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_received_idx ON webhook_deliveries (received_at);

-- A webhook names the provider's batch id: find its batch without a scan.
CREATE INDEX provider_batches_provider_batch_id_idx ON provider_batches (provider_batch_id) WHERE provider_batch_id IS NOT NULL;

-- Down Migration
DROP INDEX provider_batches_provider_batch_id_idx;
DROP TABLE webhook_deliveries;

import type { Queryable } from './queryable';

/**
 * SQL for webhook_deliveries: the webhook-ids the webhook endpoint accepted (client/webhook-server.ts), so a replayed
 * delivery is refused, across restarts too.
 */

export type WebhookDeliveryOutcome = 'received' | 'signaled' | 'unknown_batch' | 'not_running' | 'ignored';

export interface WebhookDeliveryClaim {
  webhookId: string;
  provider: string;
  eventType: string;
  providerBatchId: string | null;
}

/** Records the delivery's id; false when it was already recorded (a replay). One statement, so two racing copies cannot both win. */
export async function claimWebhookDelivery(db: Queryable, claim: WebhookDeliveryClaim): Promise<boolean> {
  const { rows } = await db.query(
    `INSERT INTO webhook_deliveries (webhook_id, provider, event_type, provider_batch_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id`,
    [claim.webhookId, claim.provider, claim.eventType, claim.providerBatchId],
  );
  return rows.length === 1;
}

export async function recordWebhookOutcome(db: Queryable, webhookId: string, outcome: WebhookDeliveryOutcome, batchId: string | null): Promise<void> {
  await db.query(`UPDATE webhook_deliveries SET outcome = $2, batch_id = $3 WHERE webhook_id = $1`, [webhookId, outcome, batchId]);
}

/** Forgets a claim whose handling failed, so the provider's retry of the same delivery is handled, not refused. */
export async function releaseWebhookDelivery(db: Queryable, webhookId: string): Promise<void> {
  await db.query(`DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND outcome = 'received'`, [webhookId]);
}

export async function getWebhookDelivery(db: Queryable, webhookId: string): Promise<{ outcome: WebhookDeliveryOutcome; batchId: string | null } | null> {
  const { rows } = await db.query(`SELECT outcome, batch_id FROM webhook_deliveries WHERE webhook_id = $1`, [webhookId]);
  return rows[0] ? { outcome: rows[0].outcome, batchId: rows[0].batch_id } : null;
}

/** Deletes deliveries received more than `olderThanMs` ago; returns how many. */
export async function pruneWebhookDeliveries(db: Queryable, olderThanMs: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM webhook_deliveries WHERE received_at < now() - ($1::bigint * interval '1 millisecond')`, [olderThanMs],
  );
  return rowCount ?? 0;
}

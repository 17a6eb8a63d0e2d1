/**
 * Webhooks of the fake provider, as OpenAI sends them: when an OpenAI batch reaches a terminal state (completed,
 * failed, cancelled, expired) the fake POSTs a `batch.<state>` event to the configured URL, signed the Standard
 * Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` over
 * `<id>.<timestamp>.<body>`, keyed with the base64 part of a `whsec_` secret) so the official SDK's
 * `webhooks.unwrap` accepts it. A delivery answered with a non-2xx status or a network error is retried with the
 * same webhook-id, as OpenAI does.
 *
 * The batch timeline is a pure function of time (timeline.ts), so the sender sets a timer at the time the batch
 * would become terminal and checks again when it fires; every change to a batch (state.ts calls `batchChanged`)
 * plans its timer anew.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { FakeHttpError, json, type Route } from './router';
import type { FakeBatch, FakeState } from './state';
import { snapshot, type Phase } from './timeline';

export interface WebhookTarget {
  /** Where events are POSTed. */
  url: string;
  /** `whsec_<base64>`, as OpenAI shows it when the endpoint is created. */
  secret: string;
  /** Wait this long after the batch ends before the first delivery (default 0). */
  delayMs?: number;
  /** Deliveries of one event before giving up (default 3), `retryDelayMs` apart (default 200). */
  attempts?: number;
  retryDelayMs?: number;
}

export interface WebhookDelivery {
  webhookId: string;
  eventId: string;
  type: string;
  providerBatchId: string;
  attempt: number;
  /** HTTP status of the answer, or 0 when the request failed (connection refused, reset). */
  status: number;
  sentAt: string;
}

const EVENT_OF_PHASE: Partial<Record<Phase, string>> = {
  completed: 'batch.completed', failed: 'batch.failed', cancelled: 'batch.cancelled', expired: 'batch.expired',
};

/** Longest single timer (setTimeout's limit is 2^31-1 ms); a later end is reached by re-arming. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The Standard Webhooks signature header value of one delivery. */
export function signWebhook(secret: string, webhookId: string, timestampSeconds: number, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
  return `v1,${createHmac('sha256', key).update(`${webhookId}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** The headers and body of a signed OpenAI webhook delivery (the sender's own, and tests' crafted ones). */
export function signedWebhook(secret: string, event: { type: string; data: { id: string }; id?: string; created_at?: number }, options: {
  webhookId?: string; timestampSeconds?: number;
} = {}): { headers: Record<string, string>; body: string; webhookId: string } {
  const webhookId = options.webhookId ?? `wh_${randomBytes(12).toString('hex')}`;
  const timestamp = options.timestampSeconds ?? Math.floor(Date.now() / 1000);
  const body = JSON.stringify({
    object: 'event', id: event.id ?? `evt_${randomBytes(12).toString('hex')}`, type: event.type, created_at: event.created_at ?? timestamp, data: event.data,
  });
  return {
    webhookId,
    body,
    headers: {
      'content-type': 'application/json',
      'webhook-id': webhookId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(secret, webhookId, timestamp, body),
    },
  };
}

/** A fresh `whsec_` secret (32 random bytes). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

export class WebhookSender {
  private target: WebhookTarget | null = null;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Batches whose event was handed to delivery (one event per batch, as a batch ends once). */
  private readonly sent = new Set<string>();
  private readonly log: WebhookDelivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private stopped = false;

  constructor(private readonly state: FakeState) {}

  /** Sets (or with null removes) the target; batches already running are planned for it. */
  configure(target: WebhookTarget | null): void {
    if (target) {
      if (!/^https?:\/\//.test(target.url)) throw new FakeHttpError(400, 'invalid_request_error', 'webhook url must be http(s)');
      if (typeof target.secret !== 'string' || target.secret.length === 0) throw new FakeHttpError(400, 'invalid_request_error', 'webhook secret is required');
    }
    this.target = target;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    if (target) for (const batch of this.state.listBatches('openai')) this.batchChanged(batch);
  }

  deliveries(): WebhookDelivery[] {
    return this.log.map((entry) => ({ ...entry }));
  }

  /** Called by the state on every change of a batch: plans (or re-plans) the timer of its end. */
  batchChanged(batch: FakeBatch): void {
    if (!this.target || this.stopped || batch.provider !== 'openai' || this.sent.has(batch.id)) return;
    const existing = this.timers.get(batch.id);
    if (existing) clearTimeout(existing);
    this.timers.delete(batch.id);
    const now = Date.now();
    const endAt = snapshot(batch.timeline, Number.MAX_SAFE_INTEGER).terminalAt;
    if (endAt === undefined) return;
    const wait = Math.min(Math.max(endAt - now, 0) + (this.target.delayMs ?? 0), MAX_TIMER_MS);
    const timer = setTimeout(() => this.fire(batch), wait);
    timer.unref();
    this.timers.set(batch.id, timer);
  }

  /** Stops timers and waits for deliveries under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private fire(batch: FakeBatch): void {
    this.timers.delete(batch.id);
    const current = this.state.snapshot(batch);
    const type = EVENT_OF_PHASE[current.phase];
    if (!current.terminal || !type) {
      this.batchChanged(batch); // the timing changed since the timer was set
      return;
    }
    const target = this.target;
    if (!target || this.sent.has(batch.id)) return;
    this.sent.add(batch.id);
    const delivery = this.deliver(target, batch.id, type).finally(() => this.inFlight.delete(delivery));
    this.inFlight.add(delivery);
  }

  private async deliver(target: WebhookTarget, providerBatchId: string, type: string): Promise<void> {
    const webhookId = `wh_${randomBytes(12).toString('hex')}`;
    const eventId = `evt_${randomBytes(12).toString('hex')}`;
    const createdAt = Math.floor(Date.now() / 1000);
    const attempts = target.attempts ?? 3;
    for (let attempt = 1; attempt <= attempts && !this.stopped; attempt += 1) {
      // Each attempt is signed with its own timestamp, under the same webhook-id.
      const { headers, body } = signedWebhook(target.secret, { id: eventId, type, created_at: createdAt, data: { id: providerBatchId } }, { webhookId });
      let status = 0;
      try {
        const response = await fetch(target.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
        status = response.status;
        await response.arrayBuffer().catch(() => undefined);
      } catch {
        status = 0;
      }
      this.log.push({ webhookId, eventId, type, providerBatchId, attempt, status, sentAt: new Date().toISOString() });
      if (status >= 200 && status < 300) return;
      if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, target.retryDelayMs ?? 200));
    }
  }
}

/** `/_control/webhooks`: set the target from another process (POST {url, secret} or null) and read the deliveries. */
export function webhookControlRoutes(sender: WebhookSender): Route[] {
  return [
    {
      name: 'control.webhooks.configure', provider: 'control', method: 'POST', pattern: /^\/_control\/webhooks$/,
      async handle(ctx) {
        const body = (await ctx.json()) as WebhookTarget | null | undefined;
        sender.configure(body ?? null);
        return json({ ok: true });
      },
    },
    {
      name: 'control.webhooks.deliveries', provider: 'control', method: 'GET', pattern: /^\/_control\/webhooks$/,
      handle: () => json({ deliveries: sender.deliveries() }),
    },
  ];
}

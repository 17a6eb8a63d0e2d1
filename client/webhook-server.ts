/**
 * The OpenAI webhook endpoint: OpenAI POSTs `batch.completed`, `batch.failed`, `batch.cancelled` and
 * `batch.expired` events when a batch ends; each is verified with the official SDK (`client.webhooks.unwrap`:
 * Standard Webhooks HMAC signature over id, timestamp and body, timestamp within the tolerance), its webhook-id is
 * recorded in PostgreSQL (webhook_deliveries) so a replay is refused even after a restart, the provider batch id
 * (`data.id`) is mapped to our batch through provider_batches, and the batch's workflow is woken with the pollNow
 * signal: it polls at once instead of at its next scheduled time. Polling stays the fallback for a lost webhook.
 *
 * Answers: 200 handled (woken, or nothing to do: an unknown batch, a batch whose workflow has ended, another event
 * type); 400 stale (timestamp outside the tolerance), missing webhook headers or an unreadable body; 401 bad
 * signature; 409 replayed webhook-id; 503 Temporal or PostgreSQL unavailable (the claim is released, so the
 * provider's retry is handled). Each delivery gets one JSON log line (ids, event type, outcome), never the body
 * or the secret.
 *
 * Run it with `batchkeeper webhooks serve` (its own process) or start it in an app's worker process with
 * `startWebhookServer` from `batchkeeper/worker`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import OpenAI, { InvalidWebhookSignatureError } from 'openai';
import type { Pool } from 'pg';
import { pollNowSignal } from '../domain/definitions';
import { batchWorkflowId } from '../domain/workflow-ids';
import { findBatchOfProviderBatch } from '../db/provider-batches-store';
import {
  claimWebhookDelivery, pruneWebhookDeliveries, recordWebhookOutcome, releaseWebhookDelivery, type WebhookDeliveryOutcome,
} from '../db/webhook-deliveries-store';

/** The path OpenAI is pointed at: https://<public host>/webhooks/openai. */
export const OPENAI_WEBHOOK_PATH = '/webhooks/openai';

const BATCH_EVENTS = new Set(['batch.completed', 'batch.failed', 'batch.cancelled', 'batch.expired']);
/** Webhook payloads are small (an id and a type); anything larger is refused unread. */
const MAX_BODY_BYTES = 256 * 1024;
/** Deliveries are kept this long (replays of older ones are refused as stale before the table is consulted). */
const RETENTION_MS = 7 * 24 * 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;

export type WebhookLogLevel = 'INFO' | 'WARN' | 'ERROR';
export type WebhookLogRecord = { time: string; level: WebhookLogLevel; message: string } & Record<string, unknown>;

export interface WebhookServerOptions {
  pool: Pool;
  /** Signals the batch workflows (its namespace is theirs). */
  temporal: Client;
  /** `whsec_...`: the signing secret OpenAI shows for the endpoint. */
  secret: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Seconds a signed timestamp may be from now (default 300, the SDK's). */
  toleranceSeconds?: number;
  /** Providers whose batches the events are about (default ['openai']). */
  providers?: readonly string[];
  /** Where log lines go; default one JSON object per line on stderr. */
  log?: (record: WebhookLogRecord) => void;
}

export interface WebhookServerCounts {
  signaled: number;
  unknownBatch: number;
  notRunning: number;
  ignored: number;
  forged: number;
  stale: number;
  replayed: number;
  malformed: number;
  failed: number;
}

export interface WebhookServer {
  /** http://host:port */
  url: string;
  /** The URL OpenAI (or the fake provider) posts to. */
  webhookUrl: string;
  counts(): WebhookServerCounts;
  close(): Promise<void>;
}

type Outcome = keyof WebhookServerCounts;

interface Answer {
  status: number;
  outcome: Outcome;
  level: WebhookLogLevel;
  message: string;
  fields?: Record<string, unknown>;
}

export async function startWebhookServer(options: WebhookServerOptions): Promise<WebhookServer> {
  if (!options.secret) throw new Error('startWebhookServer: secret is required (BATCHKEEPER_OPENAI_WEBHOOK_SECRET)');
  const tolerance = options.toleranceSeconds ?? 300;
  const providers = options.providers ?? ['openai'];
  const log = options.log ?? ((record) => process.stderr.write(`${JSON.stringify(record)}\n`));
  // Only the webhook helpers are used: no API call is ever made with this client.
  const openai = new OpenAI({ apiKey: 'unused-webhook-verification-only', webhookSecret: options.secret, maxRetries: 0 });
  const counts: WebhookServerCounts = { signaled: 0, unknownBatch: 0, notRunning: 0, ignored: 0, forged: 0, stale: 0, replayed: 0, malformed: 0, failed: 0 };

  async function handleDelivery(req: IncomingMessage): Promise<Answer> {
    const headers = webhookHeaders(req);
    const webhookId = headers['webhook-id'];
    const idField = webhookId ? { webhookId: webhookId.slice(0, 200) } : {};
    const body = await readLimited(req);
    if (body === undefined) return { status: 413, outcome: 'malformed', level: 'WARN', message: 'webhook refused: body too large', fields: idField };
    let event: { type?: unknown; data?: { id?: unknown } };
    try {
      event = (await openai.webhooks.unwrap(body, headers, options.secret, tolerance)) as typeof event;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (error instanceof InvalidWebhookSignatureError && /too old|too new/.test(reason)) {
        return { status: 400, outcome: 'stale', level: 'WARN', message: `webhook refused as stale: ${reason} (tolerance ${tolerance} s)`, fields: { ...idField, timestamp: headers['webhook-timestamp'] } };
      }
      if (error instanceof InvalidWebhookSignatureError) {
        return { status: 401, outcome: 'forged', level: 'WARN', message: `webhook refused: ${reason}`, fields: idField };
      }
      if (error instanceof SyntaxError) return { status: 400, outcome: 'malformed', level: 'WARN', message: 'webhook refused: the signed body is not JSON', fields: idField };
      if (/Missing required header/.test(reason)) return { status: 400, outcome: 'malformed', level: 'WARN', message: `webhook refused: ${reason}`, fields: idField };
      throw error;
    }
    const type = typeof event.type === 'string' ? event.type : '';
    const providerBatchId = typeof event.data?.id === 'string' ? event.data.id : null;
    const fields: Record<string, unknown> = { ...idField, eventType: type, ...(providerBatchId ? { providerBatchId } : {}) };
    if (!BATCH_EVENTS.has(type)) {
      return { status: 200, outcome: 'ignored', level: 'INFO', message: `webhook ignored: event type ${JSON.stringify(type)} is not a batch event`, fields };
    }
    if (!providerBatchId) return { status: 400, outcome: 'malformed', level: 'WARN', message: 'webhook refused: a batch event without data.id', fields };

    // The signature covers the webhook-id, so a recorded id can only come back as a replay of that very delivery.
    if (!(await claimWebhookDelivery(options.pool, { webhookId: webhookId!, provider: providers[0]!, eventType: type, providerBatchId }))) {
      return { status: 409, outcome: 'replayed', level: 'WARN', message: 'webhook refused as replayed: this webhook-id was already received', fields };
    }
    const settle = async (outcome: WebhookDeliveryOutcome, batchId: string | null) => recordWebhookOutcome(options.pool, webhookId!, outcome, batchId);
    try {
      const batch = await findBatchOfProviderBatch(options.pool, providerBatchId, providers);
      if (!batch) {
        await settle('unknown_batch', null);
        return { status: 200, outcome: 'unknownBatch', level: 'WARN', message: `webhook for a provider batch batchkeeper does not know: nothing to wake`, fields };
      }
      fields.batchId = batch.batchId;
      try {
        await options.temporal.workflow.getHandle(batchWorkflowId(batch.batchId)).signal(pollNowSignal);
      } catch (error) {
        const closed = error instanceof WorkflowNotFoundError || /workflow execution already completed/i.test(String((error as Error)?.message));
        if (!closed) throw error;
        await settle('not_running', batch.batchId);
        return { status: 200, outcome: 'notRunning', level: 'INFO', message: `webhook ${type}: the batch's workflow is not running (status ${batch.status}); nothing to wake`, fields };
      }
      await settle('signaled', batch.batchId);
      return { status: 200, outcome: 'signaled', level: 'INFO', message: `webhook ${type}: batch woken to poll now`, fields };
    } catch (error) {
      await releaseWebhookDelivery(options.pool, webhookId!).catch(() => undefined);
      const reason = error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : String(error);
      return { status: 503, outcome: 'failed', level: 'ERROR', message: `webhook not handled (the provider will retry): ${reason}`, fields };
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return reply(res, 200, { ok: true });
    if (path !== OPENAI_WEBHOOK_PATH) return reply(res, 404, { error: `no endpoint at ${path}; OpenAI webhooks go to ${OPENAI_WEBHOOK_PATH}` });
    if (req.method !== 'POST') return reply(res, 405, { error: 'POST only' });
    let answer: Answer;
    try {
      answer = await handleDelivery(req);
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message.split('\n')[0]}` : String(error);
      answer = { status: 503, outcome: 'failed', level: 'ERROR', message: `webhook not handled (the provider will retry): ${reason}` };
    }
    counts[answer.outcome] += 1;
    log({ time: new Date().toISOString(), level: answer.level, message: answer.message, outcome: answer.outcome, status: answer.status, ...answer.fields });
    reply(res, answer.status, { outcome: answer.outcome });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) reply(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;

  const prune = () => pruneWebhookDeliveries(options.pool, RETENTION_MS).catch(() => undefined);
  void prune();
  const pruner = setInterval(prune, PRUNE_EVERY_MS);
  pruner.unref();

  return {
    url,
    webhookUrl: `${url}${OPENAI_WEBHOOK_PATH}`,
    counts: () => ({ ...counts }),
    close: () => new Promise<void>((resolve) => {
      clearInterval(pruner);
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** The three Standard Webhooks headers as single strings (the SDK reads only these). */
function webhookHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
    const value = req.headers[name];
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value)) out[name] = value.join(' ');
  }
  return out;
}

/** The body as text, or undefined once it passes MAX_BODY_BYTES. */
async function readLimited(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      req.resume();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

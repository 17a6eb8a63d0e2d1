/**
 * The fake provider HTTP server: routes requests to the OpenAI, Anthropic and control handlers, applying call
 * counters, injected faults and API-key checks on the way. `startFakeProvider` is the programmatic entry point.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { anthropicRoutes } from './anthropic-routes';
import type { FakeConfig, OutcomeSpec } from './config';
import { applyBatchControl, controlRoutes, describeBatch, describeState, validateOutcomes, type BatchControl } from './control-routes';
import { errorReply, faultBody, hasApiKey, unauthorized } from './error-bodies';
import { fileLedger, type FileLedger } from './file-ledger';
import { FaultInjector, type FaultRatesSpec, type FaultSpec } from './faults';
import { geminiRoutes } from './gemini-routes';
import { readBody, sendReply } from './http-io';
import { openaiRoutes } from './openai-routes';
import { OPENAI_VARIANTS, variantBaseUrl } from './openai-variants';
import { FakeHttpError, matchRoute, type Reply, type RequestContext, type Route, type RouteProvider } from './router';
import type { OpenAIVariantName } from './config';
import { FakeState, STATUS_READ_TIMES_KEPT, type BatchCounters, type CreatedBatchInfo, type QueueRefusal } from './state';
import { syncRoutes } from './sync-routes';
import { webhookControlRoutes, WebhookSender, type WebhookDelivery, type WebhookTarget } from './webhooks';
import { xaiRoutes } from './xai-routes';

export interface FakeProviderOptions {
  /** Default 0 (any free port). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default processing time per batch, ms (default 300). */
  processingMs?: number;
  /** Seed for rate-based faults (default 1). */
  seed?: number;
}

export interface FakeProvider {
  url: string;
  /** For `new OpenAI({ baseURL })`: url + '/v1'. */
  openaiBaseUrl: string;
  /** For `new Anthropic({ baseURL })`: the bare url. */
  anthropicBaseUrl: string;
  /** For `new GoogleGenAI({ httpOptions: { baseUrl } })`: the bare url (paths carry /v1beta, /upload, /download). */
  geminiBaseUrl: string;
  /** xAI's REST API, served under /xai: url + '/xai/v1'. */
  xaiBaseUrl: string;
  /** An OpenAI-compatible variant's baseURL (its own path prefix, status spelling and auth; openai-variants.ts). */
  compatibleBaseUrl(variant: OpenAIVariantName): string;
  configure(partial: Partial<FakeConfig>): void;
  /** Merges into the outcome table (replace: start from an empty table). Outcomes are captured at batch creation. */
  setOutcomes(outcomes: Record<string, OutcomeSpec>, options?: { replace?: boolean }): void;
  injectFault(spec: FaultSpec | FaultSpec[]): void;
  setFaultRates(spec: FaultRatesSpec): void;
  clearFaults(): void;
  /** Calls received about one provider batch (faulted calls included); undefined for an unknown id. */
  counters(providerBatchId: string): BatchCounters | undefined;
  /** Calls received per route name, faulted ones included. */
  routeCounts(): Record<string, number>;
  createdBatches(): CreatedBatchInfo[];
  /** Creates refused (or failed at validation) for a full queue (config.queueLimits, outcome queue_limited). */
  queueRefusals(): QueueRefusal[];
  /** Files each provider still holds (input uploads, result files) and those deleted through its DELETE route. */
  files(): FileLedger;
  batch(providerBatchId: string): ReturnType<typeof describeBatch> | undefined;
  state(): ReturnType<typeof describeState>;
  completeNow(providerBatchId: string): boolean;
  expireNow(providerBatchId: string): boolean;
  /** Globally for new batches, or for one existing batch. */
  setProcessingMs(ms: number, providerBatchId?: string): void;
  updateBatch(providerBatchId: string, control: BatchControl): boolean;
  /** Send signed OpenAI batch webhooks to this target when OpenAI batches end (null: stop); webhooks.ts. */
  configureWebhooks(target: WebhookTarget | null): void;
  /** Every webhook delivery attempt made so far, oldest first. */
  webhookDeliveries(): WebhookDelivery[];
  /** Forget batches, files, outcomes, faults, counters and the webhook target; restore the initial config. */
  reset(): void;
  close(): Promise<void>;
}

export async function startFakeProvider(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const state = new FakeState(options.processingMs ?? 300);
  const faults = new FaultInjector(options.seed ?? 1);
  const webhooks = new WebhookSender(state);
  state.onBatchChanged = (batch) => webhooks.batchChanged(batch);
  const routes = [
    ...openaiRoutes(state),
    ...OPENAI_VARIANTS.flatMap((variant) => openaiRoutes(state, variant)),
    ...anthropicRoutes(state),
    ...syncRoutes(state),
    ...geminiRoutes(state),
    ...xaiRoutes(state),
    ...controlRoutes(state, faults),
    ...webhookControlRoutes(webhooks),
  ];
  const server = createServer((req, res) => {
    handle(req, res, routes, state, faults).catch((err: unknown) => {
      // Last resort: a bug in a handler must not take the server down.
      if (!res.headersSent) sendReply(res, { kind: 'json', status: 500, body: { error: { type: 'fake_server_bug', message: String(err) } } }).catch(() => undefined);
      else res.destroy();
    });
  });
  // Longer than the SDKs' idle keep-alive so the client never reuses a socket the server is closing (spurious resets).
  server.keepAliveTimeout = 65_000;
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}`;

  return {
    url,
    openaiBaseUrl: `${url}/v1`,
    anthropicBaseUrl: url,
    geminiBaseUrl: url,
    xaiBaseUrl: `${url}/xai/v1`,
    compatibleBaseUrl: (variant) => variantBaseUrl(url, variant),
    configure: (partial) => state.configure(partial),
    setOutcomes: (outcomes, opts) => state.setOutcomes(validateOutcomes(outcomes), opts?.replace ?? false),
    injectFault: (spec) => faults.inject(spec),
    setFaultRates: (spec) => faults.setRates(spec),
    clearFaults: () => faults.clear(),
    counters: (id) => {
      const batch = state.getBatch(id);
      return batch ? { ...batch.counters } : undefined;
    },
    routeCounts: () => state.routeCountsRecord(),
    createdBatches: () => state.createdBatches(),
    queueRefusals: () => state.queueRefusals(),
    files: () => fileLedger(state),
    batch: (id) => {
      const batch = state.getBatch(id);
      return batch ? describeBatch(state, batch) : undefined;
    },
    state: () => describeState(state, faults),
    completeNow: (id) => state.completeNow(id),
    expireNow: (id) => state.expireNow(id),
    setProcessingMs: (ms, id) => {
      if (id === undefined) state.configure({ processingMs: ms });
      else state.updateBatch(id, { processingMs: ms });
    },
    updateBatch: (id, control) => applyBatchControl(state, id, control),
    configureWebhooks: (target) => webhooks.configure(target),
    webhookDeliveries: () => webhooks.deliveries(),
    reset: () => {
      state.reset();
      faults.clear();
      webhooks.configure(null);
    },
    close: async () => {
      await webhooks.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, routes: Route[], state: FakeState, faults: FaultInjector): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://fake.invalid');
  const matched = matchRoute(routes, req.method ?? 'GET', url.pathname);
  if (!matched) {
    await sendReply(res, errorReply(providerOfPath(url.pathname), new FakeHttpError(404, 'not_found_error', `No route for ${req.method} ${url.pathname}`)));
    return;
  }
  const { route, params } = matched;
  state.countRoute(route.name);
  const batchId = route.batchId?.(params);
  const batch = batchId !== undefined ? state.getBatch(batchId) : undefined;
  if (batch && route.counter) batch.counters[route.counter]++;
  if (batch && route.counter === 'retrieve') {
    batch.statusReadAt.push(Date.now());
    if (batch.statusReadAt.length > STATUS_READ_TIMES_KEPT) batch.statusReadAt.shift();
  }

  const fault = route.provider === 'control' ? undefined : faults.decide(route.name, batchId);
  if (fault?.latencyMs) await sleep(fault.latencyMs);
  const kind = fault ? (fault.kind ?? 'http_error') : undefined;
  if (kind === 'reset') {
    req.socket.destroy();
    return;
  }
  if (fault && (kind === 'http_error' || kind === 'html')) {
    await sendReply(res, faultReply(route.provider, fault, kind));
    return;
  }
  if (route.provider !== 'control' && !hasApiKey(req, url, route.provider)) {
    await sendReply(res, unauthorized(route.provider));
    return;
  }

  let reply: Reply;
  try {
    reply = await route.handle(requestContext(req, url, params));
  } catch (err) {
    reply = errorReply(route.provider, err);
  }
  if (kind === 'drop_response') {
    req.socket.destroy();
    return;
  }
  await sendReply(res, reply, kind === 'truncate' ? { truncateAfterLines: fault?.afterLines ?? 1 } : {});
}

function requestContext(req: IncomingMessage, url: URL, params: Record<string, string>): RequestContext {
  let body: Promise<Buffer> | undefined;
  const readOnce = () => (body ??= readBody(req));
  return {
    req,
    url,
    params,
    origin: `http://${req.headers.host ?? 'localhost'}`,
    body: readOnce,
    json: async () => {
      const data = await readOnce();
      if (data.length === 0) return undefined;
      try {
        return JSON.parse(data.toString('utf8')) as unknown;
      } catch {
        throw new FakeHttpError(400, 'invalid_request_error', 'Request body is not valid JSON.');
      }
    },
  };
}

function faultReply(provider: RouteProvider, fault: FaultSpec, kind: 'http_error' | 'html'): Reply {
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) headers['retry-after'] = String(fault.retryAfterSeconds);
  if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
  if (fault.shouldRetry !== undefined) headers['x-should-retry'] = String(fault.shouldRetry);
  if (kind === 'html') {
    const status = fault.status ?? 502;
    const page = `<html><head><title>${status} Bad Gateway</title></head><body><center><h1>${status} Bad Gateway</h1></center><hr><center>nginx</center></body></html>`;
    return { kind: 'raw', status, data: page, contentType: 'text/html', headers };
  }
  const status = fault.status ?? 503;
  return { kind: 'json', status, body: fault.body ?? faultBody(provider, status), headers };
}

/** Error shape for a path no route matched. */
function providerOfPath(pathname: string): RouteProvider {
  if (pathname.startsWith('/v1/messages')) return 'anthropic';
  if (/^\/(upload\/|download\/)?v1beta\//.test(pathname)) return 'gemini';
  if (pathname.startsWith('/xai/')) return 'xai';
  return pathname.startsWith('/_control/') ? 'control' : 'openai';
}

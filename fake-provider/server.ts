/**
 * The fake provider HTTP server: routes requests to the OpenAI, Anthropic and control handlers, applying call
 * counters, injected faults and API-key checks on the way. `startFakeProvider` is the programmatic entry point.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { anthropicErrorBody } from './anthropic-format';
import { anthropicRoutes } from './anthropic-routes';
import type { FakeConfig, OutcomeSpec } from './config';
import { applyBatchControl, controlRoutes, describeBatch, describeState, validateOutcomes, type BatchControl } from './control-routes';
import { FaultInjector, type FaultRatesSpec, type FaultSpec } from './faults';
import { readBody, sendReply } from './http-io';
import { openaiErrorBody } from './openai-format';
import { openaiRoutes } from './openai-routes';
import { FakeHttpError, matchRoute, type Reply, type RequestContext, type Route, type RouteProvider } from './router';
import { FakeState, type BatchCounters, type CreatedBatchInfo } from './state';

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
  batch(providerBatchId: string): ReturnType<typeof describeBatch> | undefined;
  state(): ReturnType<typeof describeState>;
  completeNow(providerBatchId: string): boolean;
  expireNow(providerBatchId: string): boolean;
  /** Globally for new batches, or for one existing batch. */
  setProcessingMs(ms: number, providerBatchId?: string): void;
  updateBatch(providerBatchId: string, control: BatchControl): boolean;
  /** Forget batches, files, outcomes, faults and counters; restore the initial config. */
  reset(): void;
  close(): Promise<void>;
}

export async function startFakeProvider(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const state = new FakeState(options.processingMs ?? 300);
  const faults = new FaultInjector(options.seed ?? 1);
  const routes = [...openaiRoutes(state), ...anthropicRoutes(state), ...controlRoutes(state, faults)];
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
    reset: () => {
      state.reset();
      faults.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
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
  if (route.provider !== 'control' && !hasApiKey(req, route.provider)) {
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

function hasApiKey(req: IncomingMessage, provider: RouteProvider): boolean {
  const bearer = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
  if (provider === 'openai') return bearer;
  return bearer || (typeof req.headers['x-api-key'] === 'string' && req.headers['x-api-key'].trim() !== '');
}

function unauthorized(provider: RouteProvider): Reply {
  return provider === 'anthropic'
    ? { kind: 'json', status: 401, body: anthropicErrorBody('authentication_error', 'x-api-key header is required') }
    : { kind: 'json', status: 401, body: openaiErrorBody("You didn't provide an API key.", 'invalid_request_error') };
}

function errorReply(provider: RouteProvider, err: unknown): Reply {
  const error = err instanceof FakeHttpError ? err : new FakeHttpError(500, 'api_error', `Internal error in fake provider: ${String(err)}`);
  const body =
    provider === 'anthropic'
      ? anthropicErrorBody(error.type, error.message)
      : provider === 'openai'
        ? openaiErrorBody(error.message, error.type, error.code)
        : { error: { type: error.type, message: error.message } };
  return { kind: 'json', status: error.status, body };
}

const ANTHROPIC_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

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
  const message = `Simulated ${status} from the fake provider.`;
  const body =
    fault.body ??
    (provider === 'anthropic'
      ? anthropicErrorBody(ANTHROPIC_ERROR_TYPES[status] ?? 'api_error', message)
      : openaiErrorBody(message, status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error', status === 429 ? 'rate_limit_exceeded' : null));
  return { kind: 'json', status, body, headers };
}

function providerOfPath(pathname: string): RouteProvider {
  if (pathname.startsWith('/v1/messages')) return 'anthropic';
  return pathname.startsWith('/v1/') ? 'openai' : 'control';
}

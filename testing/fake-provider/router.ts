/** Route table types and matching: handlers return a Reply, the server decides how (or whether) to send it. */
import type { IncomingMessage } from 'node:http';

/** The wire family a route speaks (error shape, auth header); OpenAI-compatible variants speak 'openai'. */
export type RouteProvider = 'openai' | 'anthropic' | 'gemini' | 'xai' | 'control';

export type Reply =
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> }
  | { kind: 'lines'; status: number; lines: Iterable<string>; contentType: string; headers?: Record<string, string> }
  | { kind: 'raw'; status: number; data: string | Buffer; contentType: string; headers?: Record<string, string> };

export interface RequestContext {
  req: IncomingMessage;
  url: URL;
  params: Record<string, string>;
  /** scheme://host[:port] as the client addressed us, for absolute URLs such as Anthropic's results_url. */
  origin: string;
  body(): Promise<Buffer>;
  json(): Promise<unknown>;
}

export interface Route {
  /** Stable name used by fault specs and counters, e.g. 'openai.batches.retrieve'. */
  name: string;
  provider: RouteProvider;
  method: string;
  pattern: RegExp;
  /** The provider batch a call is about, for per-batch counters and batch-scoped faults. */
  batchId?(params: Record<string, string>): string | undefined;
  /** Per-batch counter this route bumps. */
  counter?: 'retrieve' | 'cancel' | 'results';
  handle(ctx: RequestContext): Promise<Reply> | Reply;
}

/** Thrown by handlers; rendered in the provider's error shape by the server. */
export class FakeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200): Reply {
  return { kind: 'json', status, body };
}

export function matchRoute(
  routes: readonly Route[],
  method: string,
  pathname: string,
): { route: Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const match = route.pattern.exec(pathname);
    if (match) return { route, params: { ...(match.groups ?? {}) } };
  }
  return undefined;
}

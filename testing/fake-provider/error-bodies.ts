/** Error replies in each provider's wire shape: handler errors, injected faults, missing API keys. */
import type { IncomingMessage } from 'node:http';
import { anthropicErrorBody } from './anthropic-format';
import { openaiErrorBody } from './openai-format';
import { FakeHttpError, type Reply, type RouteProvider } from './router';

const ANTHROPIC_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

/** google.rpc status names by HTTP status, as Google APIs pair them. */
const GOOGLE_STATUSES: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** xAI's REST errors: a gRPC-style description in `code`, the message in `error`. */
const XAI_CODES: Readonly<Record<number, string>> = {
  400: 'Client specified an invalid argument',
  401: 'Request is unauthenticated',
  403: 'Permission denied',
  404: 'Some requested entity was not found',
  429: 'Too many requests',
  503: 'Service unavailable',
};

export function googleErrorBody(status: number, message: string) {
  return { error: { code: status, message, status: GOOGLE_STATUSES[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION') } };
}

export function xaiErrorBody(status: number, message: string) {
  return { code: XAI_CODES[status] ?? (status >= 500 ? 'Internal error' : 'Failed precondition'), error: message };
}

/** The body for a FakeHttpError thrown by a handler. */
export function errorReply(provider: RouteProvider, err: unknown): Reply {
  const error = err instanceof FakeHttpError ? err : new FakeHttpError(500, 'api_error', `Internal error in fake provider: ${String(err)}`);
  const bodies: Record<RouteProvider, () => unknown> = {
    anthropic: () => anthropicErrorBody(error.type, error.message),
    openai: () => openaiErrorBody(error.message, error.type, error.code),
    gemini: () => googleErrorBody(error.status, error.message),
    xai: () => xaiErrorBody(error.status, error.message),
    control: () => ({ error: { type: error.type, message: error.message } }),
  };
  return { kind: 'json', status: error.status, body: bodies[provider]() };
}

/** The default body of an injected http_error fault. */
export function faultBody(provider: RouteProvider, status: number): unknown {
  const message = `Simulated ${status} from the fake provider.`;
  switch (provider) {
    case 'anthropic':
      return anthropicErrorBody(ANTHROPIC_ERROR_TYPES[status] ?? 'api_error', message);
    case 'gemini':
      return googleErrorBody(status, message);
    case 'xai':
      return xaiErrorBody(status, message);
    default:
      return openaiErrorBody(
        message,
        status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error',
        status === 429 ? 'rate_limit_exceeded' : null,
      );
  }
}

/** Whether the call carries the API key the way its provider expects it (any non-empty value will do). */
export function hasApiKey(req: IncomingMessage, url: URL, provider: RouteProvider): boolean {
  const bearer = /^Bearer\s+\S+/i.test(req.headers.authorization ?? '');
  const header = (name: string) => typeof req.headers[name] === 'string' && (req.headers[name] as string).trim() !== '';
  switch (provider) {
    case 'anthropic':
      return bearer || header('x-api-key');
    case 'openai':
      return bearer || header('api-key'); // api-key: Azure
    case 'gemini':
      return header('x-goog-api-key') || url.searchParams.has('key');
    default:
      return bearer;
  }
}

export function unauthorized(provider: RouteProvider): Reply {
  switch (provider) {
    case 'anthropic':
      return { kind: 'json', status: 401, body: anthropicErrorBody('authentication_error', 'x-api-key header is required') };
    case 'gemini':
      return { kind: 'json', status: 403, body: googleErrorBody(403, "Method doesn't allow unregistered callers. Please use an API key.") };
    case 'xai':
      return { kind: 'json', status: 401, body: xaiErrorBody(401, 'No API key provided.') };
    default:
      return { kind: 'json', status: 401, body: openaiErrorBody("You didn't provide an API key.", 'invalid_request_error') };
  }
}

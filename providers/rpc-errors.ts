/**
 * Per-request errors of Google-style APIs (Gemini result lines) and of xAI's batch results, which carry a google.rpc
 * status name, a gRPC code number, an HTTP code or a free-form code string: turned into one result line with a
 * stable upper-case code and a retryability verdict.
 */
import { str, type JsonRecord } from './normalise';
import type { ProviderResultLine } from './types';

/** gRPC codes by number (google.rpc.Code). */
const GRPC_NAMES = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE',
  'DATA_LOSS', 'UNAUTHENTICATED',
];

/** HTTP codes as Google maps them to rpc statuses. */
const HTTP_NAMES: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 408: 'DEADLINE_EXCEEDED', 409: 'ABORTED',
  429: 'RESOURCE_EXHAUSTED', 499: 'CANCELLED', 500: 'INTERNAL', 501: 'UNIMPLEMENTED', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED',
};

/** Resubmitting the same request cannot help. */
const PERMANENT = new Set([
  'INVALID_ARGUMENT', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'FAILED_PRECONDITION', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'UNAUTHENTICATED',
]);

/** One errored (or cancelled) request from an error object `{status?, code?, message?}`. */
export function rpcErrorLine(customId: string, error: JsonRecord, fallbackMessage?: string): ProviderResultLine {
  const errorCode = statusName(error.status, error.code) ?? 'UNKNOWN';
  const errorMessage = str(error.message) ?? fallbackMessage ?? errorCode;
  if (/(^|_)CANCELL?ED$/.test(errorCode)) return { kind: 'canceled', customId, errorCode, errorMessage, retryable: true };
  if (/(^|_)EXPIRED$/.test(errorCode)) return { kind: 'expired', customId, errorCode, errorMessage, retryable: true };
  return { kind: 'errored', customId, errorCode, errorMessage, retryable: !PERMANENT.has(errorCode) && !/INVALID/.test(errorCode) };
}

function statusName(status: unknown, code: unknown): string | undefined {
  const named = str(status) ?? str(code);
  if (named !== undefined) return named.trim().toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  if (typeof code !== 'number' || !Number.isInteger(code)) return undefined;
  if (code < GRPC_NAMES.length && code >= 0) return GRPC_NAMES[code];
  return HTTP_NAMES[code] ?? (code >= 500 ? 'INTERNAL' : code >= 400 ? 'INVALID_ARGUMENT' : `CODE_${code}`);
}

/**
 * OpenAI-compatible batch APIs as variants of the OpenAI routes: each under its own path prefix, spelling the status
 * its own way and, for Azure's dated API, insisting on an `api-version` query and an `api-key` header. Same state
 * machine, outcomes, faults and counters; route names start with the variant's name ('groq.batches.retrieve').
 */
import type { OpenAIVariantName } from './config';
import { FakeHttpError, type RequestContext } from './router';
import type { Phase } from './timeline';

export interface OpenAIVariant {
  name: 'openai' | OpenAIVariantName;
  /** The path before /files and /batches. */
  prefix: string;
  /** The batch object's `status` for a phase. */
  status(phase: Phase): string;
  completionWindows: readonly string[];
  /** Refuses a call the variant would refuse. */
  check?(ctx: RequestContext): void;
}

export const OPENAI: OpenAIVariant = { name: 'openai', prefix: '/v1', status: (phase) => phase, completionWindows: ['24h'] };

const MISTRAL_STATUSES: Readonly<Record<Phase, string>> = {
  validating: 'QUEUED',
  in_progress: 'RUNNING',
  finalizing: 'RUNNING',
  completed: 'SUCCESS',
  failed: 'FAILED',
  cancelling: 'CANCELLATION_REQUESTED',
  cancelled: 'CANCELLED',
  expired: 'TIMEOUT_EXCEEDED',
};

/** Mixed case, and running statuses no adapter table knows: they must read as still running. */
const ODDBALL_STATUSES: Readonly<Record<Phase, string>> = {
  validating: 'Preprocessing',
  in_progress: 'In_Progress',
  finalizing: 'Writing_Output',
  completed: 'Completed',
  failed: 'Failed',
  cancelling: 'Cancelling',
  cancelled: 'Cancelled',
  expired: 'Expired',
};

export const OPENAI_VARIANTS: readonly OpenAIVariant[] = [
  // Groq: /openai/v1 paths, completion windows from 24h up to 7d.
  { name: 'groq', prefix: '/groq/openai/v1', status: (phase) => phase, completionWindows: ['24h', '48h', '72h', '7d'] },
  // Together: UPPERCASE statuses.
  { name: 'together', prefix: '/together/v1', status: (phase) => phase.toUpperCase(), completionWindows: ['24h'] },
  { name: 'mistral', prefix: '/mistral/v1', status: (phase) => MISTRAL_STATUSES[phase], completionWindows: ['24h'] },
  { name: 'azure', prefix: '/azure/openai', status: (phase) => phase, completionWindows: ['24h'], check: azureCheck },
  { name: 'oddball', prefix: '/oddball/v1', status: (phase) => ODDBALL_STATUSES[phase], completionWindows: ['24h'] },
];

/** Azure's dated API: https://{resource}.openai.azure.com/openai/batches?api-version=…, key in `api-key`. */
function azureCheck({ req, url }: RequestContext): void {
  if (!url.searchParams.get('api-version')) {
    throw new FakeHttpError(404, 'invalid_request_error', 'Resource not found: the api-version query parameter is missing.');
  }
  if (typeof req.headers['api-key'] !== 'string') throw new FakeHttpError(401, 'invalid_request_error', 'Access denied: missing api-key header.');
}

export function variantBaseUrl(url: string, name: OpenAIVariantName): string {
  const variant = OPENAI_VARIANTS.find((candidate) => candidate.name === name);
  if (!variant) throw new Error(`unknown OpenAI-compatible variant ${name}`);
  return `${url}${variant.prefix}`;
}

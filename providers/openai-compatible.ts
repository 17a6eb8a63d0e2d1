/**
 * Any OpenAI-compatible batch API (Groq, Together, Azure OpenAI, implementers with Mistral-style status names...)
 * configured by base URL: the OpenAI adapter under its own registry name, with its own client and a wider status
 * vocabulary, matched case-insensitively. Statuses nobody told us about count as still running.
 */
import OpenAI, { AzureOpenAI } from 'openai';
import { sdkOptions } from './client-options';
import { ProviderError } from './errors';
import { OPENAI_STATUS_TABLE, OpenAIBatchProvider, type OpenAIProviderOptions, type OpenAIShape } from './openai';
import type { SubmitResult } from './types';

export interface OpenAICompatibleOptions extends OpenAIProviderOptions {
  /** Registry name, e.g. 'groq', 'together', 'azure-openai'. */
  name: string;
  /**
   * Where the implementer serves /files and /batches: https://api.groq.com/openai/v1 (Groq),
   * https://api.together.xyz/v1, https://{resource}.openai.azure.com/openai/v1 (Azure's v1 API).
   */
  baseURL: string;
  /**
   * Azure's dated API: sent as `?api-version=` on every call, with the key in an `api-key` header; baseURL is then
   * https://{resource}.openai.azure.com/openai.
   */
  apiVersion?: string;
}

/**
 * OpenAI's names plus what implementers say instead: Mistral's QUEUED/RUNNING/SUCCESS/TIMEOUT_EXCEEDED/
 * CANCELLATION_REQUESTED/CANCELLED, and the PENDING/SUCCEEDED spellings some gateways use. Keys are lower case.
 */
export const COMPATIBLE_STATUS_TABLE: OpenAIShape['statusTable'] = {
  ...OPENAI_STATUS_TABLE,
  queued: 'in_progress',
  pending: 'in_progress',
  running: 'in_progress',
  cancellation_requested: 'in_progress',
  success: 'ended',
  succeeded: 'ended',
  timeout_exceeded: 'expired',
};

const RESERVED_NAMES = new Set(['openai', 'anthropic', 'gemini', 'xai']);
const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,39}$/;
/** A batch list the implementer does not have: nothing to search, as with a provider without metadata. */
const NO_LIST_STATUSES: readonly number[] = [404, 405, 501];

export class OpenAICompatibleBatchProvider extends OpenAIBatchProvider {
  constructor(options: OpenAICompatibleOptions) {
    super(options, { name: options.name, client: compatibleClient(options), statusTable: COMPATIBLE_STATUS_TABLE });
  }

  override async findExisting(batchId: string): Promise<SubmitResult | null> {
    try {
      return await super.findExisting(batchId);
    } catch (err) {
      if (err instanceof ProviderError && NO_LIST_STATUSES.includes(err.details.httpStatus ?? 0)) return null;
      throw err;
    }
  }
}

function compatibleClient(options: OpenAICompatibleOptions): OpenAI {
  if (!NAME_PATTERN.test(options.name) || RESERVED_NAMES.has(options.name)) {
    throw new Error(`OpenAI-compatible provider name ${JSON.stringify(options.name)} must match ${NAME_PATTERN} and not be a built-in provider`);
  }
  if (!options.baseURL) throw new Error(`OpenAI-compatible provider ${options.name} needs a baseURL`);
  const base = sdkOptions(options);
  return options.apiVersion ? new AzureOpenAI({ ...base, apiVersion: options.apiVersion }) : new OpenAI(base);
}

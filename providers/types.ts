/**
 * The one interface every provider adapter implements. Adapters speak to the provider through its official SDK;
 * everything above this line (activities, workflows) only sees these normalised shapes.
 */
import type { ProviderLimits } from '../domain/provider-limits';
import type { ProviderBatchStatus } from '../domain/statuses';
import type { RequestCounts } from '../domain/types';

export type { ProviderBatchStatus } from '../domain/statuses';

/** Per-request counts as far as the provider reports them (missing fields are 0). */
export type ProviderRequestCounts = RequestCounts;

export interface ProviderStatusReport {
  status: ProviderBatchStatus;
  /** The provider's own status string, kept for operators. */
  rawStatus: string;
  counts: ProviderRequestCounts;
  /** True when streamResults can be called now (output/error file or results_url present). */
  resultsAvailable: boolean;
  /** Set when the provider reports the whole batch failed (e.g. OpenAI validation errors). */
  failure?: { code: string; message: string };
  /**
   * Provider files that hold the results (OpenAI's output and error files, Gemini's responses file), for adapters
   * that delete files: stored with the read, so deleting them after the handler needs no further status read.
   */
  resultFileIds?: string[];
}

/** One request as stored in PostgreSQL: the provider-native body without the model. */
export interface ProviderRequest {
  customId: string;
  params: Record<string, unknown>;
  /**
   * The same params as JSON text, when they come from PostgreSQL: adapters that send each request as a JSON line
   * splice it instead of serialising `params` again (a 200 MB batch is parsed and re-serialised once less).
   */
  paramsJson?: string;
}

export interface SubmitInput {
  /** batchkeeper's own batch id; adapters tag the provider batch with it where the provider has metadata. */
  batchId: string;
  model: string;
  /** The batch's endpoint (e.g. '/v1/responses'); the adapter's configured endpoint when absent. */
  endpoint?: string;
  requests: AsyncIterable<ProviderRequest> | Iterable<ProviderRequest>;
}

export interface SubmitResult {
  providerBatchId: string;
  report: ProviderStatusReport;
  /** The input file uploaded for this batch, when there is one (kept so it can be deleted later). */
  inputFileId?: string;
}

/** What deleteFiles is told about one provider batch. */
export interface DeleteFilesInput {
  providerBatchId: string;
  /** The input file stored at submission, when known. */
  inputFileId: string | null;
  /** The result files of the part's terminal status read; null when not known (the adapter reads the batch). */
  resultFileIds: string[] | null;
}

/**
 * Token usage of one request, normalised across providers: inputTokens is every input token (cache reads and cache
 * writes included), outputTokens every output token (reasoning included); the optional counts say how many of them
 * were billed at another rate (domain/prices.ts).
 */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens read from the provider's prompt cache (OpenAI/xAI cached_tokens, Anthropic cache_read_input_tokens, Gemini cachedContentTokenCount). */
  cachedInputTokens?: number;
  /** Input tokens written to the prompt cache (Anthropic cache_creation_input_tokens). */
  cacheWriteTokens?: number;
  /** Output tokens spent on reasoning (OpenAI/xAI reasoning_tokens, Gemini thoughtsTokenCount). */
  reasoningTokens?: number;
}

/** One line of a provider's results, joined by custom id (never by position). */
export type ProviderResultLine =
  | { kind: 'succeeded'; customId: string; result: unknown; usage?: TokenUsage }
  | {
      kind: 'errored' | 'expired' | 'canceled';
      customId: string;
      errorCode: string;
      errorMessage: string;
      /** False for permanent per-request errors (invalid request); true when resubmitting as-is may succeed. */
      retryable: boolean;
      usage?: TokenUsage;
    }
  /** A line that could not be parsed. customId is set when it could still be recovered from the raw text. */
  | { kind: 'malformed'; customId?: string; lineNumber: number; errorMessage: string };

export interface BatchProvider {
  /** Registry name: 'openai', 'anthropic', ... */
  readonly name: string;
  /** What one provider batch may hold; a larger logical batch is split into several. */
  readonly limits: ProviderLimits;
  submit(input: SubmitInput): Promise<SubmitResult>;
  /**
   * Looks for a provider batch created earlier for this batchkeeper batch id (after a create whose response was
   * lost). Returns null when none exists or the provider cannot tag batches.
   */
  findExisting(batchId: string): Promise<SubmitResult | null>;
  getStatus(providerBatchId: string): Promise<ProviderStatusReport>;
  /**
   * Streams every result the provider has produced, output and error files alike, with flat memory: in blocks of
   * lines as they arrive (one block per downloaded chunk or results page), never the whole file at once.
   */
  streamResults(providerBatchId: string): AsyncIterable<ProviderResultLine[]>;
  cancel(providerBatchId: string): Promise<ProviderStatusReport>;
  /**
   * Sends one request through the provider's synchronous API (the straggler fallback), at the full price. Absent
   * when the provider (or its configured endpoint) has none. Failures throw ProviderError like every other call.
   */
  completeSynchronously?(model: string, request: ProviderRequest): Promise<SynchronousResult>;
  /**
   * Deletes the provider batch's files (input, output, error) once its results are stored. Idempotent: a file that
   * is already gone counts as deleted. Absent where the provider keeps no files (Anthropic) or deletion is off.
   * Returns how many files this call deleted.
   */
  deleteFiles?(input: DeleteFilesInput): Promise<{ deleted: number }>;
}

/** What a synchronous call answered: the same result object a batch result line holds for that request. */
export interface SynchronousResult {
  result: unknown;
  usage?: TokenUsage;
}

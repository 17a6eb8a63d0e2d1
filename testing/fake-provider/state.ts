/**
 * In-memory store of the fake provider: batches with their timelines and captured per-request outcomes, uploaded
 * files, configuration, call counters and the log of created batches. Provider-neutral; the route and format
 * modules translate to each provider's wire shapes.
 */
import { randomBytes } from 'node:crypto';
import { defaultConfig, type BatchRule, type QueueLimit, type BatchTiming, type FakeConfig, type OutcomeSpec, type ProviderName, type RequestOutcome } from './config';
import { shortHash } from './random';
import { snapshot, type Snapshot, type Timeline } from './timeline';

export interface FakeRequest {
  customId: string;
  params: Record<string, unknown>;
}

/** The fate of one request: its own outcome once processed, or what the batch's end did to it. */
export type Disposition = RequestOutcome | 'pending' | 'canceled' | 'batch_expired' | 'batch_failed';

export interface BatchCounters {
  create: number;
  retrieve: number;
  cancel: number;
  /** Result downloads: Anthropic results, OpenAI output/error file contents. */
  results: number;
}

export interface ValidationError {
  code: string;
  message: string;
  line: number | null;
}

export interface FakeBatch {
  id: string;
  provider: ProviderName;
  model: string;
  requests: FakeRequest[];
  /** Captured at creation, so later setOutcomes calls only affect later batches. */
  outcomes: RequestOutcome[];
  timeline: Timeline;
  metadata: Record<string, string> | null;
  endpoint: string;
  completionWindow: string;
  inputFileId: string | null;
  /** OpenAI `output_expires_after` of the create call; null when none was sent. */
  outputExpiresAfter: { anchor: string; seconds: number } | null;
  validationErrors: ValidationError[];
  fingerprint: string;
  counters: BatchCounters;
  /** When the latest status reads arrived (ms since epoch, at most STATUS_READ_TIMES_KEPT): poll timing, seen from the provider. */
  statusReadAt: number[];
}

export const STATUS_READ_TIMES_KEPT = 64;

export interface FakeFile {
  id: string;
  /** Who holds it: 'openai', an OpenAI-compatible variant, 'xai' or 'gemini'. */
  provider: string;
  /** `expires_after` as the upload sent it (OpenAI: anchor + seconds); null when none was sent. */
  expiresAfter: { anchor: string; seconds: number } | null;
  filename: string;
  purpose: string;
  bytes: number;
  createdAt: number;
  content: Buffer;
  requests: FakeRequest[];
  /** Distinct per-line urls; each must equal the batch endpoint. */
  urls: string[];
  model: string;
  /** Lines that did not parse; a batch created from this file fails validation. */
  parseErrors: ValidationError[];
}

export interface CreatedBatchInfo {
  provider: ProviderName;
  id: string;
  model: string;
  requestCount: number;
  /** sha256 of model + sorted custom ids: equal fingerprints mean the same logical batch was submitted twice. */
  fingerprint: string;
  metadata: Record<string, string> | null;
  batchkeeperBatchId: string | null;
  createdAt: string;
}

export interface NewBatch {
  provider: ProviderName;
  model: string;
  requests: FakeRequest[];
  metadata?: Record<string, string> | null;
  endpoint?: string;
  completionWindow?: string;
  inputFileId?: string | null;
  outputExpiresAfter?: { anchor: string; seconds: number } | null;
  validationErrors?: ValidationError[];
}

/** A file deleted through a provider's DELETE route. */
export interface DeletedFile {
  provider: string;
  id: string;
  deletedAt: string;
}

export type BatchPatch = BatchTiming & { failed?: boolean };

/** Batch id prefixes as each provider spells them (Gemini ids are resource names); others use 'batch_'. */
const ID_PREFIXES: Partial<Record<ProviderName, string>> = { anthropic: 'msgbatch_', gemini: 'batches/' };

/** Metadata of a provider that only names batches (Gemini, xAI): the name, and the batchkeeper id it carries. */
export function nameMetadata(name: string | undefined): Record<string, string> | null {
  if (name === undefined) return null;
  const tagged = /^batchkeeper-(.+)$/.exec(name)?.[1];
  return { name, ...(tagged !== undefined ? { batchkeeper_batch_id: tagged } : {}) };
}

/** A create the fake refused (or failed at validation) for a full queue. */
export interface QueueRefusal {
  provider: ProviderName;
  model: string;
  requestCount: number;
  /** The batch created and failed (OpenAI-shaped providers); null when the create itself was refused. */
  providerBatchId: string | null;
  at: string;
}

/** The fake's token count of a request: one per 4 characters of its JSON params. */
export function fakeTokens(request: FakeRequest): number {
  return Math.ceil(JSON.stringify(request.params).length / 4);
}

/** Providers whose queue refusals fail the batch at validation rather than refusing the create. */
const FAILS_AT_VALIDATION = new Set<ProviderName>(['openai', 'groq', 'together', 'mistral', 'azure', 'oddball']);

interface StoredOutcome {
  outcome: RequestOutcome;
  remaining: number | null;
}

export class FakeState {
  config: FakeConfig;
  private outcomes = new Map<string, StoredOutcome>();
  private batches = new Map<string, FakeBatch>();
  private files = new Map<string, FakeFile>();
  /** Rendered result files of ended batches (config.keepResultFiles), by batch id and file. */
  private keptResultFiles = new Map<string, string[]>();
  private routeCounts = new Map<string, number>();
  /** Told of every change to a batch's timeline (the webhook sender plans its event from it; webhooks.ts). */
  onBatchChanged?: (batch: FakeBatch) => void;
  private refusals: QueueRefusal[] = [];
  /** Files deleted through the DELETE routes (input and result files alike), by id. */
  private deleted = new Map<string, DeletedFile>();

  constructor(private readonly initialProcessingMs = 300) {
    this.config = defaultConfig(initialProcessingMs);
  }

  /** The lines of one result file of a batch: rendered anew, or the kept copy when keepResultFiles is on. */
  resultFile(batch: FakeBatch, current: Snapshot, file: string, render: () => Iterable<string>): Iterable<string> {
    if (!this.config.keepResultFiles || !current.terminal) return render();
    const key = `${batch.id}/${file}`;
    let kept = this.keptResultFiles.get(key);
    if (!kept) {
      kept = [...render()];
      this.keptResultFiles.set(key, kept);
    }
    return kept;
  }

  configure(partial: Partial<FakeConfig>): void {
    this.config = { ...this.config, ...partial, batchRules: [...(partial.batchRules ?? this.config.batchRules)] };
  }

  /** Merges into the current outcomes unless replace is set. */
  setOutcomes(outcomes: Record<string, OutcomeSpec>, replace = false): void {
    if (replace) this.outcomes.clear();
    for (const [customId, spec] of Object.entries(outcomes)) {
      const stored: StoredOutcome = typeof spec === 'string' ? { outcome: spec, remaining: null } : { outcome: spec.outcome, remaining: spec.times };
      this.outcomes.set(customId, stored);
    }
  }

  reset(): void {
    this.config = defaultConfig(this.initialProcessingMs);
    this.outcomes.clear();
    this.batches.clear();
    this.files.clear();
    this.keptResultFiles.clear();
    this.routeCounts.clear();
    this.refusals = [];
    this.deleted.clear();
  }

  /** Creates refused for a full queue, oldest first. */
  queueRefusals(): QueueRefusal[] {
    return [...this.refusals];
  }

  /** The queue limit a new batch breaks, if any: its tokens and requests on top of the running batches'. */
  private overQueueLimit(input: NewBatch): QueueLimit | undefined {
    const limits = (this.config.queueLimits ?? []).filter((limit) => limit.provider === input.provider && (limit.model === undefined || limit.model === input.model));
    if (limits.length === 0) return undefined;
    let tokens = input.requests.reduce((sum, request) => sum + fakeTokens(request), 0);
    let requests = input.requests.length;
    const now = Date.now();
    for (const batch of this.batches.values()) {
      if (batch.provider !== input.provider || batch.model !== input.model || batch.timeline.failed || this.snapshot(batch, now).terminal) continue;
      tokens += batch.requests.reduce((sum, request) => sum + fakeTokens(request), 0);
      requests += batch.requests.length;
    }
    return limits.find((limit) => (limit.maxEnqueuedTokens !== undefined && tokens > limit.maxEnqueuedTokens)
      || (limit.maxRequests !== undefined && requests > limit.maxRequests));
  }

  /**
   * Creates a batch, or returns 'rejected' when a batch rule says the create call must fail, or 'queue_limited' when
   * the provider's queue is full and it refuses creates (Anthropic, Gemini; OpenAI-shaped providers create the batch
   * and fail it at validation instead).
   */
  createBatch(input: NewBatch): FakeBatch | 'rejected' | 'queue_limited' {
    const rule = this.takeRule(input);
    if (rule?.outcome === 'rejected') return 'rejected';
    const queueLimited = rule?.outcome === 'queue_limited' || (input.provider !== 'xai' && this.overQueueLimit(input) !== undefined);
    if (queueLimited && !FAILS_AT_VALIDATION.has(input.provider)) {
      this.refusals.push({ provider: input.provider, model: input.model, requestCount: input.requests.length, providerBatchId: null, at: new Date().toISOString() });
      return 'queue_limited';
    }
    const id = `${ID_PREFIXES[input.provider] ?? 'batch_'}${randomBytes(12).toString('hex')}`;
    const batch: FakeBatch = {
      id,
      provider: input.provider,
      model: input.model,
      requests: input.requests,
      outcomes: input.requests.map((request) => this.takeOutcome(request.customId)),
      timeline: {
        createdAt: Date.now(),
        processingMs: rule?.processingMs ?? this.config.processingMs,
        expireAfterMs: rule?.expireAfterMs !== undefined ? rule.expireAfterMs : this.config.expireAfterMs,
        failAfterMs: rule?.failAfterMs ?? null,
        cancelDelayMs: rule?.cancelDelayMs ?? this.config.cancelDelayMs,
        cancelRequestedAt: null,
        failed: rule?.outcome === 'failed' || queueLimited || (input.validationErrors?.length ?? 0) > 0,
        requestCount: input.requests.length,
      },
      metadata: input.metadata ?? null,
      endpoint: input.endpoint ?? '/v1/chat/completions',
      completionWindow: input.completionWindow ?? '24h',
      inputFileId: input.inputFileId ?? null,
      outputExpiresAfter: input.outputExpiresAfter ?? null,
      validationErrors: input.validationErrors?.length
        ? input.validationErrors
        : queueLimited
          ? [{
              code: 'token_limit_exceeded',
              message: `Enqueued token limit reached for ${input.model} in organization org-fake. Please try again once some in_progress batches have been completed.`,
              line: null,
            }]
          : rule?.outcome === 'failed'
            ? [{ code: 'invalid_request', message: 'Batch validation failed (simulated batch failure).', line: null }]
            : [],
      fingerprint: fingerprint(input.model, input.requests),
      counters: { create: 1, retrieve: 0, cancel: 0, results: 0 },
      statusReadAt: [],
    };
    this.batches.set(id, batch);
    this.onBatchChanged?.(batch);
    if (queueLimited) this.refusals.push({ provider: input.provider, model: input.model, requestCount: input.requests.length, providerBatchId: id, at: new Date().toISOString() });
    return batch;
  }

  getBatch(id: string): FakeBatch | undefined {
    return this.batches.get(id);
  }

  /** Newest first, like both providers' list endpoints. */
  listBatches(provider: ProviderName): FakeBatch[] {
    return [...this.batches.values()].filter((batch) => batch.provider === provider).reverse();
  }

  snapshot(batch: FakeBatch, now = Date.now()): Snapshot {
    return snapshot(batch.timeline, now);
  }

  /** Starts cancellation; false when the batch already finished (the provider refuses). */
  cancel(batch: FakeBatch): boolean {
    const current = this.snapshot(batch);
    if (current.terminal) return false;
    if (batch.timeline.cancelRequestedAt === null) batch.timeline.cancelRequestedAt = Date.now();
    this.onBatchChanged?.(batch);
    return true;
  }

  updateBatch(id: string, patch: BatchPatch): boolean {
    const batch = this.batches.get(id);
    if (!batch) return false;
    const timeline = batch.timeline;
    if (patch.processingMs !== undefined) timeline.processingMs = patch.processingMs;
    if (patch.expireAfterMs !== undefined) timeline.expireAfterMs = patch.expireAfterMs;
    if (patch.failAfterMs !== undefined) timeline.failAfterMs = patch.failAfterMs;
    if (patch.cancelDelayMs !== undefined) timeline.cancelDelayMs = patch.cancelDelayMs;
    if (patch.failed !== undefined) timeline.failed = patch.failed;
    this.onBatchChanged?.(batch);
    return true;
  }

  /** Finishes processing now (all requests processed); no effect on a batch that already ended. */
  completeNow(id: string): boolean {
    const batch = this.batches.get(id);
    if (!batch || this.snapshot(batch).terminal || batch.timeline.cancelRequestedAt !== null) return false;
    batch.timeline.processingMs = Math.max(0, Date.now() - batch.timeline.createdAt);
    this.onBatchChanged?.(batch);
    return true;
  }

  /** Expires the batch now, keeping whatever was processed so far. */
  expireNow(id: string): boolean {
    const batch = this.batches.get(id);
    if (!batch || this.snapshot(batch).terminal || batch.timeline.cancelRequestedAt !== null) return false;
    batch.timeline.expireAfterMs = Math.max(0, Date.now() - batch.timeline.createdAt);
    this.onBatchChanged?.(batch);
    return true;
  }

  disposition(batch: FakeBatch, current: Snapshot, index: number): Disposition {
    if (index < current.processed) return batch.outcomes[index] ?? 'succeeded';
    if (current.phase === 'failed') return 'batch_failed';
    if (current.phase === 'cancelled') return 'canceled';
    if (current.phase === 'expired') return 'batch_expired';
    return 'pending';
  }

  /** Tally of dispositions, one pass over the requests. */
  tally(batch: FakeBatch, current: Snapshot): Map<Disposition, number> {
    const result = new Map<Disposition, number>();
    for (let i = 0; i < batch.requests.length; i++) {
      const disposition = this.disposition(batch, current, i);
      result.set(disposition, (result.get(disposition) ?? 0) + 1);
    }
    return result;
  }

  addFile(file: FakeFile): void {
    this.files.set(file.id, file);
  }

  /** An uploaded file, unless it was deleted. */
  getFile(id: string): FakeFile | undefined {
    return this.deleted.has(id) ? undefined : this.files.get(id);
  }

  /** Every uploaded file that was not deleted. */
  liveInputFiles(): FakeFile[] {
    return [...this.files.values()].filter((file) => !this.deleted.has(file.id));
  }

  isDeleted(id: string): boolean {
    return this.deleted.has(id);
  }

  /** Records a file (input or result) as deleted; the routes check first that it exists and is the provider's. */
  markDeleted(provider: string, id: string): void {
    this.deleted.set(id, { provider, id, deletedAt: new Date().toISOString() });
  }

  deletedFiles(): DeletedFile[] {
    return [...this.deleted.values()];
  }

  countRoute(route: string): void {
    this.routeCounts.set(route, (this.routeCounts.get(route) ?? 0) + 1);
  }

  routeCountsRecord(): Record<string, number> {
    return Object.fromEntries(this.routeCounts);
  }

  createdBatches(): CreatedBatchInfo[] {
    return [...this.batches.values()].map((batch) => ({
      provider: batch.provider,
      id: batch.id,
      model: batch.model,
      requestCount: batch.requests.length,
      fingerprint: batch.fingerprint,
      metadata: batch.metadata,
      batchkeeperBatchId: batch.metadata?.batchkeeper_batch_id ?? null,
      createdAt: new Date(batch.timeline.createdAt).toISOString(),
    }));
  }

  private takeOutcome(customId: string): RequestOutcome {
    const stored = this.outcomes.get(customId);
    if (!stored) return 'succeeded';
    if (stored.remaining !== null && --stored.remaining <= 0) this.outcomes.delete(customId);
    return stored.outcome;
  }

  private takeRule(input: NewBatch): BatchRule | undefined {
    const index = this.config.batchRules.findIndex((rule) => ruleMatches(rule, input));
    const rule = this.config.batchRules[index];
    if (!rule) return undefined;
    if (rule.times !== undefined) {
      const remaining = rule.times - 1;
      if (remaining <= 0) this.config.batchRules.splice(index, 1);
      else this.config.batchRules[index] = { ...rule, times: remaining };
    }
    return rule;
  }
}

function ruleMatches(rule: BatchRule, input: NewBatch): boolean {
  const match = rule.match ?? {};
  if (match.provider !== undefined && match.provider !== input.provider) return false;
  if (match.model !== undefined && match.model !== input.model) return false;
  if (match.batchkeeperBatchId !== undefined && input.metadata?.batchkeeper_batch_id !== match.batchkeeperBatchId) return false;
  if (match.customId !== undefined && !input.requests.some((request) => request.customId === match.customId)) return false;
  return true;
}

function fingerprint(model: string, requests: FakeRequest[]): string {
  const ids = requests.map((request) => request.customId).sort();
  return shortHash(`${model}\n${ids.join('\n')}`);
}

import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ClientBase, Pool } from 'pg';
import {
  batchStateQuery, cancelBatchUpdate, extendDeadlineUpdate, pollNowSignal,
} from '../domain/definitions';
import { KNOWN_PROVIDER_LIMITS, type ProviderLimitsTable } from '../domain/provider-limits';
import { REQUEST_STATUSES } from '../domain/statuses';
import type { BatchWorkflowState, RequestStatus } from '../domain/types';
import { batchWorkflowId, jobWorkflowId } from '../domain/workflow-ids';
import { startSubjectWorkflow } from '../domain/workflow-start';
import { findBatchByIdempotencyKey, getBatch, insertBatch, type BatchRecord } from '../db/batches-store';
import { listEvents, type EventRecord } from '../db/events-store';
import { getJob, insertJob, type JobRecord } from '../db/jobs-store';
import { inTransaction, schemaOf } from '../db/pool';
import type { Queryable } from '../db/queryable';
import { inAppTransaction } from '../db/schema';
import { listStepAttempts, type StepAttemptRecord } from '../db/steps-store';
import { getOpenDeadLetter, type DeadLetterRecord } from '../db/dead-letters-store';
import { listRequests, type RequestRecord } from '../db/requests-store';
import { DEFAULT_MAX_AGE_MS, DEFAULT_POLL_SCHEDULE_MS } from '../domain/poll-schedule';
import { IdempotencyConflictError, NotApplicableError, NotFoundError, ValidationError, WaitTimeoutError } from './errors';
import { withWorkflowErrors } from './temporal-errors';
import { requireUuid } from './ids';
import { validateSubmitBatch, type SubmitBatchInput, type ValidSubmitBatch } from './validate-batch';
import { validateStartJob, type StartJobInput } from './validate-job';

export interface BatchkeeperClientOptions {
  client: Client;
  pool: Pool;
  taskQueue: string;
  /** When given, submitBatch rejects handler names not in this list. */
  handlers?: readonly string[];
  /**
   * Providers batches may be submitted to, with their limits. Default: the known providers; add OpenAI-compatible
   * endpoints under their own names with providerLimitsTable() (config/ does it from the environment).
   */
  providerLimits?: ProviderLimitsTable;
}

export interface BatchDetails {
  batch: BatchRecord;
  steps: StepAttemptRecord[];
  deadLetter: DeadLetterRecord | null;
}

export interface SubmittedBatch {
  batchId: string;
  workflowId: string;
  /** False when the idempotency key named a batch stored before. */
  created: boolean;
  /** False when written in the caller's transaction: start it with startBatchWorkflow() after the commit. */
  started: boolean;
}

export interface StartedJob {
  jobId: string;
  workflowId: string;
  created: boolean;
  started: boolean;
}


/** The app-facing API: submit and inspect batches and jobs, and act on them as an operator. */
export class BatchkeeperClient {
  readonly temporal: Client;
  readonly pool: Pool;
  readonly taskQueue: string;
  private readonly handlers?: readonly string[];
  private readonly providerLimits: ProviderLimitsTable;

  constructor(options: BatchkeeperClientOptions) {
    this.temporal = options.client;
    this.pool = options.pool;
    this.taskQueue = options.taskQueue;
    this.handlers = options.handlers;
    this.providerLimits = options.providerLimits ?? KNOWN_PROVIDER_LIMITS;
  }

  /**
   * Validates, writes the batch and its requests in one transaction, and starts its workflow. Submitting again with
   * the same idempotency key returns the same batch (and makes sure its workflow was started).
   *
   * With `transaction` (the app's own client inside BEGIN), the rows are written in that transaction, so the batch
   * commits or rolls back with the app's rows, and the workflow is not started: call startBatchWorkflow(batchId)
   * after the commit. If the app dies in between, the recovery sweep starts it.
   */
  async submitBatch(input: SubmitBatchInput, options: { transaction?: ClientBase } = {}): Promise<SubmittedBatch> {
    const valid = validateSubmitBatch(input, { handlers: this.handlers, providerLimits: this.providerLimits });
    const idempotencyKey = valid.idempotencyKey ?? randomUUID();
    const store = (db: ClientBase) => this.storeBatch(db, valid, idempotencyKey);
    const { batch, created } = options.transaction
      ? await inAppTransaction(options.transaction, schemaOf(this.pool), () => store(options.transaction!))
      : await inTransaction(this.pool, store);
    if (!created) assertSameSubmission(batch, valid, idempotencyKey);
    if (options.transaction) return { batchId: batch.id, workflowId: batch.workflowId, created, started: false };
    await startSubjectWorkflow(this.temporal, { kind: 'batch', batch }, this.taskQueue, 'first');
    return { batchId: batch.id, workflowId: batch.workflowId, created, started: true };
  }

  /** Inserts the batch unless its idempotency key is stored already; returns the stored batch either way. */
  private async storeBatch(db: ClientBase, valid: ValidSubmitBatch, idempotencyKey: string): Promise<{ batch: BatchRecord; created: boolean }> {
    const existing = await findBatchByIdempotencyKey(db, idempotencyKey);
    if (existing) return { batch: existing, created: false };
    const batchId = randomUUID();
    await db.query('SAVEPOINT batchkeeper_insert');
    try {
      await insertBatch(db, {
        id: batchId,
        idempotencyKey,
        workflowId: batchWorkflowId(batchId),
        provider: valid.provider,
        model: valid.model,
        handlerName: valid.handler ?? null,
        metadata: valid.metadata ?? {},
        pollScheduleMs: valid.pollScheduleMs ?? DEFAULT_POLL_SCHEDULE_MS,
        maxAgeMs: valid.maxAgeMs ?? DEFAULT_MAX_AGE_MS,
        maxRequestAttempts: valid.maxRequestAttempts ?? 1,
        stragglers: valid.stragglers ?? null,
        endpoint: valid.endpoint ?? null,
        requests: valid.requests,
      });
    } catch (error) {
      // Only a concurrent submit with the same key may end here; any other failure is an error of its own.
      if (!isUniqueViolation(error, 'batches_idempotency_key_key')) throw error;
      await db.query('ROLLBACK TO SAVEPOINT batchkeeper_insert');
      const winner = await findBatchByIdempotencyKey(db, idempotencyKey);
      if (!winner) throw error;
      return { batch: winner, created: false };
    }
    return { batch: (await getBatch(db, batchId))!, created: true };
  }

  /** Starts the workflow of a stored (committed) batch unless it runs or ran already. */
  async startBatchWorkflow(batchId: string): Promise<void> {
    const { batch } = await this.getBatch(batchId);
    await startSubjectWorkflow(this.temporal, { kind: 'batch', batch }, this.taskQueue, 'first');
  }

  async getBatch(batchId: string): Promise<BatchDetails> {
    const id = requireUuid('batch', batchId);
    const batch = await getBatch(this.pool, id);
    if (!batch) throw new NotFoundError('batch', batchId);
    return {
      batch,
      steps: await listStepAttempts(this.pool, 'batch', id),
      deadLetter: await getOpenDeadLetter(this.pool, 'batch', id),
    };
  }

  async getTimeline(kind: 'batch' | 'job', id: string): Promise<EventRecord[]> {
    if (kind !== 'batch' && kind !== 'job') throw new ValidationError('kind', "must be 'batch' or 'job'");
    const events = await listEvents(this.pool, kind, requireUuid(kind, id));
    // Every stored batch and job has a `created` event: no events means no such batch or job.
    if (events.length === 0) throw new NotFoundError(kind, id);
    return events;
  }

  /** Pages through a batch's per-request results in submission order. Pass `next` back as `after`. */
  async listResults(
    batchId: string,
    page: { after?: number; limit?: number; status?: RequestStatus } = {},
  ): Promise<{ items: RequestRecord[]; next?: number }> {
    checkPage(page);
    const { batch } = await this.getBatch(batchId);
    const limit = Math.min(Math.max(page.limit ?? 100, 1), 1000);
    const items = await listRequests(this.pool, batch.id, { afterPosition: page.after, limit, status: page.status });
    return { items, next: items.length === limit ? items[items.length - 1].position : undefined };
  }

  /** Resolves when the batch workflow has finished (following continue-as-new), with the stored batch. */
  async waitForBatch(batchId: string, options: { timeoutMs?: number } = {}): Promise<BatchRecord> {
    const { batch } = await this.getBatch(batchId);
    await withTimeout(this.temporal.workflow.getHandle(batch.workflowId).result(), options.timeoutMs, `batch ${batchId}`);
    return (await this.getBatch(batchId)).batch;
  }

  async batchState(batchId: string): Promise<BatchWorkflowState> {
    const handle = await this.batchHandle(batchId);
    return withWorkflowErrors('batch', batchId, () => handle.query(batchStateQuery));
  }

  /** Polls the provider now instead of at the next scheduled time. */
  async pollNow(batchId: string): Promise<void> {
    const handle = await this.runningBatchHandle(batchId);
    await withWorkflowErrors('batch', batchId, () => handle.signal(pollNowSignal));
  }

  /** Cancels at the provider; partial results are collected and the handler told. */
  async cancelBatch(batchId: string, reason = 'canceled by operator'): Promise<{ status: string }> {
    const handle = await this.runningBatchHandle(batchId);
    return withWorkflowErrors('batch', batchId, () => handle.executeUpdate(cancelBatchUpdate, { args: [{ reason }] }));
  }

  async extendDeadline(batchId: string, change: { deadlineAt?: string; byMs?: number }): Promise<{ deadlineAt: string }> {
    if (change.deadlineAt === undefined && change.byMs === undefined) {
      throw new ValidationError('deadline', 'give deadlineAt (ISO time) or byMs (milliseconds)');
    }
    if (change.deadlineAt !== undefined && !Number.isFinite(Date.parse(change.deadlineAt))) {
      throw new ValidationError('deadlineAt', `${JSON.stringify(change.deadlineAt)} is not an ISO time`);
    }
    if (change.byMs !== undefined && (!Number.isFinite(change.byMs) || change.byMs <= 0)) {
      throw new ValidationError('byMs', 'must be a positive number of milliseconds');
    }
    const handle = await this.runningBatchHandle(batchId);
    return withWorkflowErrors('batch', batchId, () => handle.executeUpdate(extendDeadlineUpdate, { args: [change] }));
  }

  /**
   * Starts a generic job; the same idempotency key returns the same job. With `transaction`, as for submitBatch: the
   * job commits with the app's rows and startJobWorkflow(jobId) starts it after the commit.
   */
  async startJob(input: StartJobInput, options: { transaction?: ClientBase } = {}): Promise<StartedJob> {
    validateStartJob(input);
    const jobId = randomUUID();
    const store = (db: Queryable) => insertJob(db, {
      id: jobId,
      idempotencyKey: input.idempotencyKey ?? jobId,
      workflowId: jobWorkflowId(jobId),
      jobType: input.type,
      input: input.input,
      inputRef: input.inputRef ?? null,
      retryPolicy: input.retry ?? null,
    });
    const { job, created } = options.transaction
      ? await inAppTransaction(options.transaction, schemaOf(this.pool), () => store(options.transaction!))
      : await store(this.pool);
    if (!created && job.jobType !== input.type) {
      throw new IdempotencyConflictError(input.idempotencyKey!, `stored job has type ${job.jobType}`);
    }
    if (options.transaction) return { jobId: job.id, workflowId: job.workflowId, created, started: false };
    await startSubjectWorkflow(this.temporal, { kind: 'job', job }, this.taskQueue, 'first');
    return { jobId: job.id, workflowId: job.workflowId, created, started: true };
  }

  /** Starts the workflow of a stored (committed) job unless it runs or ran already. */
  async startJobWorkflow(jobId: string): Promise<void> {
    const { job } = await this.getJob(jobId);
    await startSubjectWorkflow(this.temporal, { kind: 'job', job }, this.taskQueue, 'first');
  }

  async getJob(jobId: string): Promise<{ job: JobRecord; steps: StepAttemptRecord[]; deadLetter: DeadLetterRecord | null }> {
    const id = requireUuid('job', jobId);
    const job = await getJob(this.pool, id);
    if (!job) throw new NotFoundError('job', jobId);
    return { job, steps: await listStepAttempts(this.pool, 'job', id), deadLetter: await getOpenDeadLetter(this.pool, 'job', id) };
  }

  async waitForJob(jobId: string, options: { timeoutMs?: number } = {}): Promise<JobRecord> {
    const { job } = await this.getJob(jobId);
    await withTimeout(this.temporal.workflow.getHandle(job.workflowId).result(), options.timeoutMs, `job ${jobId}`);
    return (await this.getJob(jobId)).job;
  }

  private async batchHandle(batchId: string): Promise<WorkflowHandle> {
    const { batch } = await this.getBatch(batchId);
    return this.temporal.workflow.getHandle(batch.workflowId);
  }

  /** The batch's workflow handle, after checking the workflow is still running (so the action can apply). */
  private async runningBatchHandle(batchId: string): Promise<WorkflowHandle> {
    const handle = await this.batchHandle(batchId);
    const description = await withWorkflowErrors('batch', batchId, () => handle.describe());
    if (description.status.name !== 'RUNNING') {
      throw new NotApplicableError(`batch ${batchId}: its workflow is ${description.status.name.toLowerCase()}, not running`);
    }
    return handle;
  }
}

/** Wrong types would otherwise reach SQL as NaN or text and come back as a database error. */
function checkPage(page: { after?: unknown; limit?: unknown; status?: unknown }): void {
  if (page.limit !== undefined && !Number.isInteger(page.limit)) throw new ValidationError('limit', 'must be a whole number (1-1000)');
  if (page.after !== undefined && !Number.isInteger(page.after)) throw new ValidationError('after', 'must be a position (a whole number) from a previous page');
  if (page.status !== undefined && !REQUEST_STATUSES.includes(page.status as RequestStatus)) {
    throw new ValidationError('status', `must be one of ${REQUEST_STATUSES.join(', ')}`);
  }
}

function isUniqueViolation(error: unknown, constraint: string): boolean {
  return (error as { code?: string }).code === '23505' && (error as { constraint?: string }).constraint === constraint;
}

function assertSameSubmission(batch: BatchRecord, input: ValidSubmitBatch, key: string): void {
  const differences: string[] = [];
  if (batch.provider !== input.provider) differences.push(`provider ${batch.provider}`);
  if (batch.model !== input.model) differences.push(`model ${batch.model}`);
  if (batch.requestCount !== input.requests.length) differences.push(`${batch.requestCount} requests`);
  if ((batch.endpoint ?? undefined) !== input.endpoint) differences.push(`endpoint ${batch.endpoint ?? 'default'}`);
  if (differences.length) throw new IdempotencyConflictError(key, `stored batch has ${differences.join(', ')}`);
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, what: string): Promise<T> {
  if (!timeoutMs) return promise;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new WaitTimeoutError(what, timeoutMs)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

import { randomUUID } from 'node:crypto';
import { Client, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import type { Pool } from 'pg';
import {
  batchStateQuery, cancelBatchUpdate, extendDeadlineUpdate, pollNowSignal,
} from '../domain/definitions';
import type { BatchWorkflowState, RequestStatus, RetrySettings } from '../domain/types';
import {
  findBatchByIdempotencyKey, getBatch, insertBatch, listRequests, type BatchRecord, type RequestRecord,
} from '../db/batches-store';
import { listEvents, type EventRecord } from '../db/events-store';
import { getJob, insertJob, type JobRecord } from '../db/jobs-store';
import { inTransaction } from '../db/pool';
import { listStepAttempts, type StepAttemptRecord } from '../db/steps-store';
import { getOpenDeadLetter, type DeadLetterRecord } from '../db/dead-letters-store';
import { DEFAULT_MAX_AGE_MS, DEFAULT_POLL_SCHEDULE_MS } from '../domain/poll-schedule';
import type { batchWorkflowV2 } from '../workflows/batch-workflow';
import type { jobWorkflow } from '../workflows/job-workflow';
import { IdempotencyConflictError, NotApplicableError, NotFoundError, ValidationError } from './errors';
import { BATCH_WORKFLOW_TYPE, batchStartOptions, jobStartOptions } from '../domain/workflow-start';
import { withWorkflowErrors } from './temporal-errors';
import { validateRetrySettings, validateSubmitBatch, type SubmitBatchInput } from './validate-batch';
import { batchWorkflowId, jobWorkflowId } from '../domain/workflow-ids';

export interface BatchkeeperClientOptions {
  client: Client;
  pool: Pool;
  taskQueue: string;
  /** When given, submitBatch rejects handler names not in this list. */
  handlers?: readonly string[];
}

export interface BatchDetails {
  batch: BatchRecord;
  steps: StepAttemptRecord[];
  deadLetter: DeadLetterRecord | null;
}

export interface StartJobInput {
  type: string;
  /** Small JSON input (at most 16 KB), or a reference (inputRef) the executor resolves itself. */
  input?: unknown;
  inputRef?: string;
  idempotencyKey?: string;
  retry?: Partial<RetrySettings>;
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Checks an id before it reaches SQL or Temporal, so an unknown or malformed id gets a clear error. */
export function requireUuid(kind: string, id: unknown): string {
  if (typeof id !== 'string' || !uuidPattern.test(id)) throw new NotFoundError(kind, String(id));
  return id.toLowerCase();
}

/** The app-facing API: submit and inspect batches and jobs, and act on them as an operator. */
export class BatchkeeperClient {
  readonly temporal: Client;
  readonly pool: Pool;
  readonly taskQueue: string;
  private readonly handlers?: readonly string[];

  constructor(options: BatchkeeperClientOptions) {
    this.temporal = options.client;
    this.pool = options.pool;
    this.taskQueue = options.taskQueue;
    this.handlers = options.handlers;
  }

  /**
   * Validates, writes the batch and its requests in one transaction, and starts its workflow. Submitting again with
   * the same idempotency key returns the same batch (and makes sure its workflow was started).
   */
  async submitBatch(input: SubmitBatchInput): Promise<{ batchId: string; workflowId: string; created: boolean }> {
    const valid = validateSubmitBatch(input, { handlers: this.handlers });
    const idempotencyKey = valid.idempotencyKey ?? randomUUID();
    let batch = await findBatchByIdempotencyKey(this.pool, idempotencyKey);
    let created = false;
    if (!batch) {
      const batchId = randomUUID();
      try {
        await inTransaction(this.pool, (db) =>
          insertBatch(db, {
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
            requests: valid.requests,
          }),
        );
        created = true;
      } catch (error) {
        if ((error as { code?: string }).code !== '23505') throw error; // a concurrent submit with the same key won
      }
      batch = await findBatchByIdempotencyKey(this.pool, idempotencyKey);
      if (!batch) throw new Error(`batch for idempotency key ${idempotencyKey} was not stored`);
    }
    if (!created) assertSameSubmission(batch, valid, idempotencyKey);
    await this.startBatchWorkflow(batch);
    return { batchId: batch.id, workflowId: batch.workflowId, created };
  }

  /** Starts (or finds) the workflow of a stored batch. Used by submit and by the recovery sweep's callers. */
  async startBatchWorkflow(batch: BatchRecord): Promise<void> {
    try {
      await this.temporal.workflow.start<typeof batchWorkflowV2>(BATCH_WORKFLOW_TYPE, {
        ...batchStartOptions(batch, this.taskQueue),
        args: [{ batchId: batch.id }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error; // it ran already: nothing to do
    }
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

  /** Starts a generic job; the same idempotency key returns the same job. */
  async startJob(input: StartJobInput): Promise<{ jobId: string; workflowId: string; created: boolean }> {
    if (typeof input?.type !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(input.type)) {
      throw new ValidationError('type', 'must be a job type name of 1-100 characters of [A-Za-z0-9_.:-]');
    }
    if (input.input !== undefined && jsonBytes(input.input) > 16 * 1024) {
      throw new ValidationError('input', 'must be at most 16 KB of JSON; pass larger inputs by reference (inputRef)');
    }
    if (input.inputRef !== undefined && (typeof input.inputRef !== 'string' || input.inputRef.length > 2000)) {
      throw new ValidationError('inputRef', 'must be a string of at most 2000 characters');
    }
    if (input.idempotencyKey !== undefined && (typeof input.idempotencyKey !== 'string' || !input.idempotencyKey || input.idempotencyKey.length > 200)) {
      throw new ValidationError('idempotencyKey', 'must be a string of 1-200 characters');
    }
    if (input.retry !== undefined) validateRetrySettings(input.retry, 'retry');
    const jobId = randomUUID();
    const { job, created } = await insertJob(this.pool, {
      id: jobId,
      idempotencyKey: input.idempotencyKey ?? jobId,
      workflowId: jobWorkflowId(jobId),
      jobType: input.type,
      input: input.input,
      inputRef: input.inputRef ?? null,
      retryPolicy: input.retry ?? null,
    });
    if (!created && job.jobType !== input.type) {
      throw new IdempotencyConflictError(input.idempotencyKey!, `stored job has type ${job.jobType}`);
    }
    await this.startJobWorkflow(job);
    return { jobId: job.id, workflowId: job.workflowId, created };
  }

  async startJobWorkflow(job: JobRecord): Promise<void> {
    try {
      await this.temporal.workflow.start<typeof jobWorkflow>('jobWorkflow', {
        ...jobStartOptions(job, this.taskQueue),
        args: [{ jobId: job.id }],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
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

const REQUEST_STATUSES: readonly RequestStatus[] = ['pending', 'succeeded', 'errored', 'expired', 'canceled', 'missing'];

/** Wrong types would otherwise reach SQL as NaN or text and come back as a database error. */
function checkPage(page: { after?: unknown; limit?: unknown; status?: unknown }): void {
  if (page.limit !== undefined && !Number.isInteger(page.limit)) throw new ValidationError('limit', 'must be a whole number (1-1000)');
  if (page.after !== undefined && !Number.isInteger(page.after)) throw new ValidationError('after', 'must be a position (a whole number) from a previous page');
  if (page.status !== undefined && !REQUEST_STATUSES.includes(page.status as RequestStatus)) {
    throw new ValidationError('status', `must be one of ${REQUEST_STATUSES.join(', ')}`);
  }
}

function jsonBytes(value: unknown): number {
  try {
    return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
  } catch {
    throw new ValidationError('input', 'must be JSON (no BigInt values or circular references)');
  }
}

function assertSameSubmission(batch: BatchRecord, input: SubmitBatchInput, key: string): void {
  const differences: string[] = [];
  if (batch.provider !== input.provider) differences.push(`provider ${batch.provider}`);
  if (batch.model !== input.model) differences.push(`model ${batch.model}`);
  if (batch.requestCount !== input.requests.length) differences.push(`${batch.requestCount} requests`);
  if (differences.length) throw new IdempotencyConflictError(key, `stored batch has ${differences.join(', ')}`);
}

async function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, what: string): Promise<T> {
  if (!timeoutMs) return promise;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

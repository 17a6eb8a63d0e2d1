import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Pool } from 'pg';
import { batchStateQuery, jobStateQuery, resolveDeadLetterUpdate } from '../domain/definitions';
import { DEAD_LETTERED, HANDLER, KIND, PROVIDER, STATUS } from '../domain/search-attributes';
import { BATCH_STATUSES, JOB_STATUSES } from '../domain/statuses';
import type { ResolveDeadLetterResult, RetrySettings } from '../domain/types';
import {
  getDeadLetter, listDeadLetters, type DeadLetterFilter, type DeadLetterRecord,
} from '../db/dead-letters-store';
import { listFailedWork, type FailedWorkFilter, type FailedWorkRecord } from '../db/failed-work-store';
import { NotApplicableError, NotFoundError, ValidationError } from './errors';
import { withWorkflowErrors } from './temporal-errors';
import { validateRetrySettings } from './validate-batch';
import { requireUuid } from './ids';
import { requireStorableText } from './validate-text';
import { buildVisibilityQuery, type WorkflowFilter } from './visibility-query';

export interface WorkflowSummary {
  workflowId: string;
  runId: string;
  kind: string | undefined;
  status: string | undefined;
  provider: string | undefined;
  handler: string | undefined;
  deadLettered: boolean;
  executionStatus: string;
  startTime: Date;
  closeTime?: Date;
}

export interface DeadLetterDecision {
  retry?: Partial<RetrySettings>;
  resolvedBy?: string;
  note?: string;
}

export interface BulkResult {
  matched: number;
  done: string[];
  failed: { deadLetterId: string; error: string }[];
}

export interface BulkOptions {
  /** Called once before the first and after every dead letter acted on. */
  onProgress?(progress: { matched: number; done: number; failed: number }): void;
}

export interface ConsistencyReport {
  checkedInPostgres: number;
  checkedInTemporal: number;
  mismatches: { deadLetterId?: string; workflowId: string; problem: string }[];
}

/** Operator actions: visibility queries, dead letters, failed work, and the PostgreSQL/Temporal consistency check. */
export class BatchkeeperAdmin {
  constructor(private readonly temporal: Client, private readonly pool: Pool) {}

  /** Lists batches and jobs through Temporal visibility, newest first. */
  async listWorkflows(filter: WorkflowFilter = {}, limit = 100): Promise<WorkflowSummary[]> {
    checkLimit(limit);
    const query = buildVisibilityQuery(filter);
    const found: WorkflowSummary[] = [];
    for await (const info of this.temporal.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
      found.push(toSummary(info));
      if (found.length >= limit) break;
    }
    return found;
  }

  /**
   * Counts batches and jobs through visibility, optionally per status. Temporal groups only by ExecutionStatus (the
   * dev server and SQL visibility alike), so per batchkeeper status it counts each known status on its own.
   */
  async countWorkflows(filter: WorkflowFilter = {}, groupBy?: 'BatchkeeperStatus' | 'ExecutionStatus'): Promise<{ count: number; groups: { value: string; count: number }[] }> {
    const query = buildVisibilityQuery(filter);
    if (groupBy === 'BatchkeeperStatus') {
      const statuses = filter.status !== undefined ? [filter.status] : [...new Set<string>([...BATCH_STATUSES, ...JOB_STATUSES, 'running'])];
      const counted = await Promise.all(statuses.map(async (value) => ({
        value, count: (await this.temporal.workflow.count(buildVisibilityQuery({ ...filter, status: value }))).count,
      })));
      const { count } = await this.temporal.workflow.count(query);
      const groups = counted.filter((group) => group.count > 0);
      const rest = count - groups.reduce((sum, group) => sum + group.count, 0);
      return { count, groups: rest > 0 ? [...groups, { value: '', count: rest }] : groups };
    }
    const result = await this.temporal.workflow.count(query + (groupBy ? ` GROUP BY ${groupBy}` : ''));
    return {
      count: result.count,
      groups: result.groups.map((group) => ({ value: String(group.groupValues[0] ?? ''), count: group.count })),
    };
  }

  async listDeadLetters(filter: DeadLetterFilter = {}): Promise<DeadLetterRecord[]> {
    checkLimit(filter.limit);
    checkFilterText(filter);
    return listDeadLetters(this.pool, filter);
  }

  /** The oldest open dead letter, left in place. */
  async peekDeadLetter(filter: DeadLetterFilter = {}): Promise<DeadLetterRecord | null> {
    checkLimit(filter.limit);
    checkFilterText(filter);
    return (await listDeadLetters(this.pool, { ...filter, limit: 1 }))[0] ?? null;
  }

  /**
   * Hands the oldest open dead letter to `callback`; it is popped (resolved with `onPop`, discard by default) only
   * when the callback returns true. Returns null when there is none.
   */
  async nextDeadLetter(
    callback: (letter: DeadLetterRecord) => boolean | Promise<boolean>,
    options: { filter?: DeadLetterFilter; onPop?: 'discard' | 'requeue'; decision?: DeadLetterDecision } = {},
  ): Promise<{ deadLetter: DeadLetterRecord; popped: boolean } | null> {
    const letter = await this.peekDeadLetter(options.filter);
    if (!letter) return null;
    const pop = await callback(letter);
    if (!pop) return { deadLetter: letter, popped: false };
    await this.resolve(letter.id, options.onPop ?? 'discard', { note: 'popped by next()', ...options.decision });
    return { deadLetter: letter, popped: true };
  }

  requeueDeadLetter(deadLetterId: string, decision: DeadLetterDecision = {}): Promise<ResolveDeadLetterResult> {
    if (decision.retry) validateRetrySettings(decision.retry, 'retry');
    return this.resolve(deadLetterId, 'requeue', decision);
  }

  discardDeadLetter(deadLetterId: string, decision: Omit<DeadLetterDecision, 'retry'> = {}): Promise<ResolveDeadLetterResult> {
    return this.resolve(deadLetterId, 'discard', decision);
  }

  /** Requeues every open dead letter matching the filter; one failure never stops the rest. */
  requeueDeadLetters(filter: DeadLetterFilter, decision: DeadLetterDecision = {}, options: BulkOptions = {}): Promise<BulkResult> {
    if (decision.retry) validateRetrySettings(decision.retry, 'retry');
    return this.bulk(filter, (id) => this.resolve(id, 'requeue', decision), options);
  }

  discardDeadLetters(filter: DeadLetterFilter, decision: Omit<DeadLetterDecision, 'retry'> = {}, options: BulkOptions = {}): Promise<BulkResult> {
    return this.bulk(filter, (id) => this.resolve(id, 'discard', decision), options);
  }

  async listFailedWork(filter: FailedWorkFilter = {}): Promise<FailedWorkRecord[]> {
    checkLimit(filter.limit);
    checkFilterText(filter);
    return listFailedWork(this.pool, filter);
  }

  /**
   * Compares open dead letters in PostgreSQL with parked workflows in Temporal: every open dead letter must belong to
   * a running workflow parked on that same dead letter, and every workflow marked dead-lettered must have one.
   */
  async checkDeadLetterConsistency(filter: { taskQueue?: string } = {}): Promise<ConsistencyReport> {
    const report: ConsistencyReport = { checkedInPostgres: 0, checkedInTemporal: 0, mismatches: [] };
    const open = await listDeadLetters(this.pool, { limit: 10_000 });
    const openByWorkflow = new Map(open.map((letter) => [letter.workflowId, letter]));
    for (const letter of open) {
      report.checkedInPostgres += 1;
      const parkedOn = await this.parkedDeadLetterId(letter.workflowId, letter.subjectKind).catch((error: Error) => error);
      if (parkedOn instanceof Error) {
        report.mismatches.push({ deadLetterId: letter.id, workflowId: letter.workflowId, problem: `workflow not running: ${parkedOn.message}` });
      } else if (parkedOn !== letter.id) {
        report.mismatches.push({
          deadLetterId: letter.id, workflowId: letter.workflowId,
          problem: parkedOn ? `workflow is parked on another dead letter ${parkedOn}` : 'workflow is not parked on a dead letter',
        });
      }
    }
    const query = `${buildVisibilityQuery({ deadLettered: true, executionStatus: 'Running', taskQueue: filter.taskQueue })}`;
    for await (const info of this.temporal.workflow.list({ query })) {
      report.checkedInTemporal += 1;
      if (!openByWorkflow.has(info.workflowId)) {
        const parkedOn = await this.parkedDeadLetterId(info.workflowId).catch(() => undefined);
        // Visibility lags a moment behind: only a workflow that really is parked counts as a mismatch.
        if (parkedOn) report.mismatches.push({ deadLetterId: parkedOn, workflowId: info.workflowId, problem: 'parked in Temporal but no open dead letter in PostgreSQL' });
      }
    }
    return report;
  }

  private async parkedDeadLetterId(workflowId: string, kind?: 'batch' | 'job'): Promise<string | undefined> {
    const handle = this.temporal.workflow.getHandle(workflowId);
    const description = await handle.describe();
    if (description.status.name !== 'RUNNING') throw new Error(`status ${description.status.name}`);
    const isJob = kind ? kind === 'job' : workflowId.startsWith('job-');
    const state = isJob ? await handle.query(jobStateQuery) : await handle.query(batchStateQuery);
    return state.deadLetter?.deadLetterId;
  }

  private async resolve(deadLetterId: string, action: 'requeue' | 'discard', decision: DeadLetterDecision): Promise<ResolveDeadLetterResult> {
    checkDecisionText(decision);
    requireUuid('dead letter', deadLetterId);
    const letter = await getDeadLetter(this.pool, deadLetterId);
    if (!letter) throw new NotFoundError('dead letter', deadLetterId);
    if (letter.resolution) {
      throw new NotApplicableError(`dead letter ${deadLetterId} was already ${letter.resolution} at ${letter.resolvedAt?.toISOString()}`);
    }
    const handle = this.temporal.workflow.getHandle(letter.workflowId);
    const description = await handle.describe().catch(() => undefined);
    if (description && description.status.name !== 'RUNNING') {
      throw new NotApplicableError(
        `dead letter ${deadLetterId}: its workflow ${letter.workflowId} is ${description.status.name.toLowerCase()}, not waiting for a decision ` +
          '(the sweep restarts unfinished work; run `batchkeeper dead-letters check`)',
      );
    }
    return withWorkflowErrors(letter.subjectKind, letter.subjectId, () =>
      handle.executeUpdate(resolveDeadLetterUpdate, {
        args: [{ action, deadLetterId, retry: decision.retry, resolvedBy: decision.resolvedBy, note: decision.note }],
      }),
    );
  }

  private async bulk(filter: DeadLetterFilter, act: (deadLetterId: string) => Promise<unknown>, options: BulkOptions): Promise<BulkResult> {
    checkFilterText(filter);
    const letters = await listDeadLetters(this.pool, { ...filter, limit: filter.limit ?? 10_000 });
    const result: BulkResult = { matched: letters.length, done: [], failed: [] };
    options.onProgress?.({ matched: result.matched, done: 0, failed: 0 });
    const queue = [...letters];
    const workers = Array.from({ length: Math.min(8, queue.length) }, async () => {
      for (let letter = queue.shift(); letter; letter = queue.shift()) {
        try {
          await act(letter.id);
          result.done.push(letter.id);
        } catch (error) {
          result.failed.push({ deadLetterId: letter.id, error: error instanceof Error ? error.message : String(error) });
        }
        options.onProgress?.({ matched: result.matched, done: result.done.length, failed: result.failed.length });
      }
    });
    await Promise.all(workers);
    return result;
  }
}

/** Filter values are query parameters: text PostgreSQL cannot take is refused naming the filter. */
function checkFilterText(filter: object): void {
  for (const [name, value] of Object.entries(filter)) if (typeof value === 'string') requireStorableText(value, name);
}

/** Who decided and why are stored with the dead letter. */
function checkDecisionText(decision: DeadLetterDecision): void {
  if (decision.resolvedBy !== undefined) requireStorableText(decision.resolvedBy, 'resolvedBy');
  if (decision.note !== undefined) requireStorableText(decision.note, 'note');
}

/** A row limit must be a whole number; NaN or text would otherwise reach Temporal or SQL. */
function checkLimit(limit: unknown): void {
  if (limit !== undefined && (!Number.isInteger(limit) || (limit as number) < 1)) throw new ValidationError('limit', 'must be a whole number of at least 1');
}

function toSummary(info: WorkflowExecutionInfo): WorkflowSummary {
  const attributes = info.typedSearchAttributes;
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    kind: attributes.get(KIND),
    status: attributes.get(STATUS),
    provider: attributes.get(PROVIDER),
    handler: attributes.get(HANDLER),
    deadLettered: attributes.get(DEAD_LETTERED) ?? false,
    executionStatus: info.status.name,
    startTime: info.startTime,
    closeTime: info.closeTime,
  };
}

import { ValidationError } from './errors';

/** Filters for listing and counting batches and jobs through Temporal visibility (typed search attributes). */
export interface WorkflowFilter {
  kind?: 'batch' | 'job';
  /** batchkeeper status: pending, queued, in_progress, ended, failed, ... (jobs: running, succeeded, discarded). */
  status?: string;
  provider?: string;
  /** Handler name for batches, job type for jobs. */
  handler?: string;
  deadLettered?: boolean;
  /** Temporal execution status: Running, Completed, Failed, Terminated, ... */
  executionStatus?: string;
  startedAfter?: Date | string;
  startedBefore?: Date | string;
  taskQueue?: string;
}

const SAFE_VALUE = /^[A-Za-z0-9_.:@/+-]{1,200}$/;
const EXECUTION_STATUSES = ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut'];

function literal(field: string, value: string): string {
  // Values are restricted instead of escaped: nothing a caller passes can change the query's structure.
  if (typeof value !== 'string' || !SAFE_VALUE.test(value)) {
    throw new ValidationError(field, `${JSON.stringify(value)} is not allowed here (letters, digits and _ . : @ / + - only)`);
  }
  return `'${value}'`;
}

function timeLiteral(field: string, value: Date | string): string {
  const time = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(time.getTime())) throw new ValidationError(field, `${JSON.stringify(value)} is not a valid time`);
  return `'${time.toISOString()}'`;
}

/** Builds a Temporal List Filter; the same text an operator can paste into Temporal Web. */
export function buildVisibilityQuery(filter: WorkflowFilter = {}): string {
  const clauses: string[] = [];
  if (filter.kind) {
    if (filter.kind !== 'batch' && filter.kind !== 'job') throw new ValidationError('kind', "must be 'batch' or 'job'");
    clauses.push(`BatchkeeperKind = '${filter.kind}'`);
  } else {
    clauses.push(`BatchkeeperKind IN ('batch', 'job')`);
  }
  if (filter.status !== undefined) clauses.push(`BatchkeeperStatus = ${literal('status', filter.status)}`);
  if (filter.provider !== undefined) clauses.push(`BatchkeeperProvider = ${literal('provider', filter.provider)}`);
  if (filter.handler !== undefined) clauses.push(`BatchkeeperHandler = ${literal('handler', filter.handler)}`);
  if (filter.deadLettered !== undefined && typeof filter.deadLettered !== 'boolean') {
    throw new ValidationError('deadLettered', 'must be true or false');
  }
  if (filter.deadLettered !== undefined) clauses.push(`BatchkeeperDeadLettered = ${filter.deadLettered ? 'true' : 'false'}`);
  if (filter.executionStatus !== undefined) {
    if (!EXECUTION_STATUSES.includes(filter.executionStatus)) {
      throw new ValidationError('executionStatus', `must be one of ${EXECUTION_STATUSES.join(', ')}`);
    }
    clauses.push(`ExecutionStatus = '${filter.executionStatus}'`);
  }
  if (filter.startedAfter !== undefined) clauses.push(`StartTime > ${timeLiteral('startedAfter', filter.startedAfter)}`);
  if (filter.startedBefore !== undefined) clauses.push(`StartTime < ${timeLiteral('startedBefore', filter.startedBefore)}`);
  if (filter.taskQueue !== undefined) clauses.push(`TaskQueue = ${literal('taskQueue', filter.taskQueue)}`);
  return clauses.join(' AND ');
}

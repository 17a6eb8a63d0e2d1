/** The shape of a CLI command, and the flag parsers the command groups share. */
import { userInfo } from 'node:os';
import { ValidationError } from '../client/errors';
import type { RetrySettings } from '../domain/types';
import type { DeadLetterFilter } from '../db/dead-letters-store';
import type { WorkflowFilter } from '../client/visibility-query';
import type { CliContext } from './context';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in help after the flag, e.g. "N" in --limit N. */
  value?: string;
}

export type Values = Record<string, string | boolean | undefined>;

/** What a command produced: `json` is printed with --json, `human()` otherwise. */
export interface CommandOutput {
  json: unknown;
  human: () => string;
  exitCode?: number;
  /** The command wrote its output to stdout itself, as it went (nothing more is printed). */
  streamed?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments, all required, e.g. ['batchId']. */
  args?: string[];
  options?: Record<string, OptionSpec>;
  /** Extra help text (examples, notes). */
  notes?: string;
  run(ctx: CliContext, positionals: string[], values: Values): Promise<CommandOutput>;
}

export interface CommandGroup {
  name: string;
  summary: string;
  commands: CommandSpec[];
  /** A group that is itself one command (`batchkeeper failed ...`). */
  single?: boolean;
}

/** Wrong command line: exit 2 with usage help. */
export class UsageError extends Error {
  readonly code = 'usage';
  constructor(message: string, readonly help?: string) {
    super(message);
  }
}

export const str = (values: Values, name: string): string | undefined => {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
};

export const flag = (values: Values, name: string): boolean => values[name] === true;

export function positiveInt(values: Values, name: string, max = 10_000): number | undefined {
  const raw = str(values, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new ValidationError(`--${name}`, `must be a whole number from 1 to ${max} (got ${JSON.stringify(raw)})`);
  }
  return Number(raw);
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "30m", "2h", "1d", "500ms", "1.5h" to milliseconds. */
export function parseDuration(field: string, raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(raw.trim());
  const ms = match ? Math.round(Number(match[1]) * UNIT_MS[match[2]]) : NaN;
  if (!(ms > 0)) throw new ValidationError(field, `${JSON.stringify(raw)} is not a duration like 500ms, 30s, 30m, 2h or 1d`);
  return ms;
}

export function isoTime(field: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!Number.isFinite(Date.parse(raw))) throw new ValidationError(field, `${JSON.stringify(raw)} is not an ISO time like 2025-01-31T12:00:00Z`);
  return new Date(raw).toISOString();
}

export function oneOf<T extends string>(field: string, raw: string | undefined, allowed: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  const found = allowed.find((value) => value.toLowerCase() === raw.toLowerCase());
  if (!found) throw new ValidationError(field, `must be one of ${allowed.join(', ')} (got ${JSON.stringify(raw)})`);
  return found;
}

export const LIMIT_OPTION: Record<string, OptionSpec> = { limit: { type: 'string', value: 'N', description: 'at most N rows (default 100)' } };

// ---- Visibility filters (batches list/count, jobs list/count) ----

const EXECUTION_STATUSES = ['Running', 'Completed', 'Failed', 'Canceled', 'Terminated', 'ContinuedAsNew', 'TimedOut'] as const;

export function workflowFilterOptions(handlerWord: string): Record<string, OptionSpec> {
  return {
    status: { type: 'string', value: 'S', description: 'batchkeeper status (pending, queued, in_progress, ended, failed, running, succeeded, ...)' },
    ...(handlerWord === 'handler' ? { provider: { type: 'string', value: 'P', description: 'provider (openai, anthropic)' } } : {}),
    [handlerWord]: { type: 'string', value: handlerWord === 'handler' ? 'H' : 'T', description: handlerWord === 'handler' ? 'completion handler name' : 'job type' },
    'dead-lettered': { type: 'boolean', description: 'only those parked on a dead letter' },
    'execution-status': { type: 'string', value: 'S', description: `Temporal execution status: ${EXECUTION_STATUSES.join(', ')}` },
    since: { type: 'string', value: 'ISO', description: 'started after this time' },
    until: { type: 'string', value: 'ISO', description: 'started before this time' },
    'all-task-queues': { type: 'boolean', description: 'do not restrict to BATCHKEEPER_TASK_QUEUE' },
  };
}

export function workflowFilter(kind: 'batch' | 'job', values: Values, taskQueue: string): WorkflowFilter {
  return {
    kind,
    status: str(values, 'status'),
    provider: str(values, 'provider'),
    handler: str(values, kind === 'batch' ? 'handler' : 'type'),
    deadLettered: flag(values, 'dead-lettered') ? true : undefined,
    executionStatus: oneOf('--execution-status', str(values, 'execution-status'), EXECUTION_STATUSES),
    startedAfter: isoTime('--since', str(values, 'since')),
    startedBefore: isoTime('--until', str(values, 'until')),
    taskQueue: flag(values, 'all-task-queues') ? undefined : taskQueue,
  };
}

// ---- Dead-letter filters ----

const STEPS = ['submit', 'poll', 'cancel', 'fetch_results', 'dispatch_handler', 'delete_files', 'execute', 'notify_failure'] as const;

export const DEAD_LETTER_FILTER_OPTIONS: Record<string, OptionSpec> = {
  kind: { type: 'string', value: 'batch|job', description: 'only batches or only jobs' },
  step: { type: 'string', value: 'S', description: `failed step: ${STEPS.join(', ')}` },
  'error-class': { type: 'string', value: 'C', description: 'error class, e.g. ProviderRejected' },
  provider: { type: 'string', value: 'P', description: 'batch provider' },
  handler: { type: 'string', value: 'H', description: 'batch handler name or job type' },
};

export function deadLetterFilter(values: Values): DeadLetterFilter {
  return {
    subjectKind: oneOf('--kind', str(values, 'kind'), ['batch', 'job'] as const),
    step: oneOf('--step', str(values, 'step'), STEPS),
    errorClass: str(values, 'error-class'),
    provider: str(values, 'provider'),
    typeOrHandler: str(values, 'handler'),
    includeResolved: flag(values, 'include-resolved') || undefined,
    limit: positiveInt(values, 'limit'),
  };
}

export function hasFilter(filter: DeadLetterFilter): boolean {
  return Object.entries(filter).some(([key, value]) => key !== 'limit' && key !== 'includeResolved' && value !== undefined);
}

// ---- Retry flags of requeue ----

export const RETRY_OPTIONS: Record<string, OptionSpec> = {
  'max-attempts': { type: 'string', value: 'N', description: 'attempts of the requeued step, including the first (1-1000)' },
  'initial-interval': { type: 'string', value: 'DURATION', description: 'first retry delay, e.g. 1s' },
  backoff: { type: 'string', value: 'X', description: 'backoff coefficient (1-100)' },
  'max-interval': { type: 'string', value: 'DURATION', description: 'longest retry delay, e.g. 5m' },
};

export const DECISION_OPTIONS: Record<string, OptionSpec> = {
  note: { type: 'string', value: 'TEXT', description: 'note stored with the decision' },
};

export function retryFlags(values: Values): Partial<RetrySettings> | undefined {
  const retry: Partial<RetrySettings> = {};
  const attempts = positiveInt(values, 'max-attempts', 1000);
  if (attempts !== undefined) retry.maximumAttempts = attempts;
  const initial = str(values, 'initial-interval');
  if (initial !== undefined) retry.initialIntervalMs = limitDay('--initial-interval', parseDuration('--initial-interval', initial));
  const maximum = str(values, 'max-interval');
  if (maximum !== undefined) retry.maximumIntervalMs = limitDay('--max-interval', parseDuration('--max-interval', maximum));
  const backoff = str(values, 'backoff');
  if (backoff !== undefined) {
    const value = Number(backoff);
    if (!/^\d+(\.\d+)?$/.test(backoff) || value < 1 || value > 100) throw new ValidationError('--backoff', `must be a number from 1 to 100 (got ${JSON.stringify(backoff)})`);
    retry.backoffCoefficient = value;
  }
  return Object.keys(retry).length ? retry : undefined;
}

function limitDay(field: string, ms: number): number {
  if (ms > 86_400_000) throw new ValidationError(field, 'must be at most 1d');
  return ms;
}

/** Who made a decision, stored with the dead letter's resolution: BATCHKEEPER_OPERATOR, else the login name. */
export function operatorName(ctx: { operator?: string }): string {
  if (ctx.operator) return ctx.operator;
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

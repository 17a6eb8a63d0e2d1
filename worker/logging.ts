/**
 * Structured logs of the worker process: one JSON object per line on stderr, with the batch or job id, the step and
 * the attempt where the line is about one, and Temporal's own context (workflow, activity, task queue). What is
 * logged is the SDK's lines, forwarded core lines and batchkeeper's: names, ids, counts and error classes and
 * messages; never request or result bodies, metadata or keys (test/secrets.test.ts scans the worker's output).
 */
import { DefaultLogger, type LogEntry, type LogLevel } from '@temporalio/worker';
import { subjectKindOfWorkflowId } from '../domain/workflow-ids';

export type LogFormat = 'json' | 'text';

/** Activity types of batchkeeper's steps, as step names (the step of a line from a step's activity). */
const STEP_OF_ACTIVITY: Record<string, string> = {
  submitBatch: 'submit', pollBatch: 'poll', pollUntilChange: 'poll', cancelAtProvider: 'cancel', fetchResults: 'fetch_results',
  completeStragglers: 'complete_stragglers', dispatchHandler: 'dispatch_handler', deleteProviderFiles: 'delete_files', executeJob: 'execute',
};

/** Polls on activity retries: each attempt of this activity is one poll (a first try of the poll step), not a retry. */
const POLLS_ON_RETRIES = 'pollUntilChange';

/** The fields of one log line: the subject's id drawn from the workflow id, errors as their class and message. */
export function logRecord(entry: LogEntry): Record<string, unknown> {
  const meta: Record<string, unknown> = { ...entry.meta };
  const record: Record<string, unknown> = {
    time: new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString(), level: entry.level, message: entry.message,
  };
  const workflowId = typeof meta.workflowId === 'string' ? meta.workflowId : undefined;
  const kind = workflowId ? subjectKindOfWorkflowId(workflowId) : undefined;
  if (workflowId && kind) record[`${kind}Id`] = workflowId.slice(kind.length + 1);
  if (typeof meta.activityType === 'string' && STEP_OF_ACTIVITY[meta.activityType]) record.step = STEP_OF_ACTIVITY[meta.activityType];
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'taskToken') continue; // opaque and long; the workflow and activity ids say which task it was
    record[key] = value instanceof Error ? { type: (value as { type?: string }).type ?? value.name, message: value.message } : value;
  }
  if (meta.activityType === POLLS_ON_RETRIES && typeof meta.attempt === 'number') {
    record.pollOnRetries = meta.attempt;
    record.attempt = 1;
  }
  return record;
}

/**
 * A line never fails and never dumps an object's insides: plain objects and arrays are written out, an instance of any
 * other class (the SDK logs its worker options, which hold plugins, codecs and connections) only as its class name,
 * and a repeated reference as [circular].
 */
function safeJson(record: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(record, (_key, value: unknown) => {
    if (typeof value === 'bigint') return String(value);
    if (typeof value === 'function') return undefined;
    if (!value || typeof value !== 'object') return value;
    if (seen.has(value)) return '[circular]';
    seen.add(value);
    const prototype = Object.getPrototypeOf(value);
    if (Array.isArray(value) || prototype === Object.prototype || prototype === null || value instanceof Date) return value;
    return `[${prototype?.constructor?.name ?? 'object'}]`;
  });
}

export function workerLogger(format: LogFormat, level: LogLevel): DefaultLogger {
  if (format === 'text') return new DefaultLogger(level);
  return new DefaultLogger(level, (entry) => process.stderr.write(`${safeJson(logRecord(entry))}\n`));
}

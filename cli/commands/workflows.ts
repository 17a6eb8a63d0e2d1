/** Parts shared by the batch and job groups: visibility list/count, live workflow state, steps and timeline. */
import type { Client, QueryDefinition } from '@temporalio/client';
import type { EventRecord } from '../../db/events-store';
import type { StepAttemptRecord } from '../../db/steps-store';
import { LIMIT_OPTION, oneOf, positiveInt, str, workflowFilter, workflowFilterOptions, type CommandSpec } from '../command';
import { compact, dash, table, time, truncate } from '../format';

export function listCommand(kind: 'batch' | 'job'): CommandSpec {
  const handlerWord = kind === 'batch' ? 'handler' : 'type';
  return {
    name: 'list',
    summary: `list ${plural(kind)} through Temporal visibility, newest first`,
    options: { ...workflowFilterOptions(handlerWord), ...LIMIT_OPTION },
    async run(ctx, _args, values) {
      const filter = workflowFilter(kind, values, ctx.taskQueue);
      const limit = positiveInt(values, 'limit') ?? 100;
      const found = await (await ctx.admin()).listWorkflows(filter, limit);
      const items = found.map((summary) => ({ id: subjectId(summary.workflowId), ...summary }));
      return {
        json: { items },
        human: () =>
          items.length
            ? table(
                [`${kind.toUpperCase()} ID`, 'STATUS', ...(kind === 'batch' ? ['PROVIDER'] : []), handlerWord.toUpperCase(), 'DEAD-LETTERED', 'EXECUTION', 'STARTED'],
                items.map((item) => [
                  item.id, dash(item.status), ...(kind === 'batch' ? [dash(item.provider)] : []), dash(item.handler),
                  item.deadLettered ? 'yes' : 'no', item.executionStatus, time(item.startTime),
                ]),
              )
            : `no ${plural(kind)} match`,
      };
    },
  };
}

export function countCommand(kind: 'batch' | 'job'): CommandSpec {
  const handlerWord = kind === 'batch' ? 'handler' : 'type';
  return {
    name: 'count',
    summary: `count ${plural(kind)} through Temporal visibility`,
    options: {
      ...workflowFilterOptions(handlerWord),
      'group-by': { type: 'string', value: 'status|execution-status', description: 'count per batchkeeper or Temporal status' },
    },
    async run(ctx, _args, values) {
      const filter = workflowFilter(kind, values, ctx.taskQueue);
      const groupBy = oneOf('--group-by', str(values, 'group-by'), ['status', 'execution-status'] as const);
      const result = await (await ctx.admin()).countWorkflows(
        filter, groupBy === 'status' ? 'BatchkeeperStatus' : groupBy === 'execution-status' ? 'ExecutionStatus' : undefined,
      );
      return {
        json: result,
        human: () => {
          const total = `${result.count} ${result.count === 1 ? kind : plural(kind)}`;
          if (!groupBy) return total;
          return `${total}\n${table([groupBy.toUpperCase(), 'COUNT'], result.groups.map((group) => [dash(group.value), String(group.count)]))}`;
        },
      };
    },
  };
}

const plural = (kind: 'batch' | 'job') => (kind === 'batch' ? 'batches' : 'jobs');

export function subjectId(workflowId: string): string {
  return workflowId.replace(/^(batch|job)-/, '');
}

export interface LiveState<T> {
  executionStatus: string;
  state: T | null;
}

/** The workflow's execution status and, when it is running, its query state. Problems leave `state` null. */
export async function liveState<T>(temporal: Client, workflowId: string, query: QueryDefinition<T>): Promise<LiveState<T>> {
  const handle = temporal.workflow.getHandle(workflowId);
  let executionStatus: string;
  try {
    executionStatus = (await handle.describe()).status.name;
  } catch {
    return { executionStatus: 'NOT_FOUND', state: null };
  }
  if (executionStatus !== 'RUNNING') return { executionStatus, state: null };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), 5000);
  });
  try {
    const state = await Promise.race([handle.query(query).catch(() => null), timeout]);
    return { executionStatus, state };
  } finally {
    clearTimeout(timer);
  }
}

export function stepsTable(steps: StepAttemptRecord[]): string {
  if (!steps.length) return '  (no steps run yet)';
  return table(
    ['  STEP', 'ATTEMPT', 'TOTAL', 'ROUND', 'STATE', 'LAST ERROR'],
    steps.map((step) => [
      `  ${step.step}`, String(step.attempt), String(step.totalAttempts), String(step.rounds),
      step.succeededAt ? 'ok' : step.lastError ? 'failing' : 'running',
      step.lastError ? truncate(`${step.lastErrorClass ?? 'Error'}: ${step.lastError}`, 80) : '-',
    ]),
  );
}

export function timelineTable(events: EventRecord[]): string {
  if (!events.length) return '  (no events)';
  return table(
    ['  TIME', 'EVENT', 'STATUS', 'DETAIL'],
    events.map((event) => [
      `  ${time(event.at)}`, event.kind,
      event.toStatus ? `${event.fromStatus ?? ''} → ${event.toStatus}`.trim() : '',
      truncate(compact(event.detail), 100).replace(/^-$/, ''),
    ]),
  );
}

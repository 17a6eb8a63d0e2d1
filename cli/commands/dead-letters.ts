/** `batchkeeper dead-letters ...`: the queue of parked steps, and the operator's requeue/discard decisions. */
import type { BulkOptions, BulkResult } from '../../client/admin';
import { requireUuid } from '../../client/ids';
import type { DeadLetterRecord } from '../../db/dead-letters-store';
import { deadLetterCommands } from '../../domain/operator-commands';
import {
  DEAD_LETTER_FILTER_OPTIONS, DECISION_OPTIONS, LIMIT_OPTION, RETRY_OPTIONS, UsageError, deadLetterFilter, flag,
  hasFilter, operatorName, retryFlags, str, type CommandGroup, type CommandOutput, type CommandSpec,
} from '../command';
import type { CliContext } from '../context';
import { dash, fields, indent, table, time, truncate } from '../format';

/** A dead letter as a label/value block (batches show, jobs show, dead-letters peek). */
export function deadLetterBlock(letter: DeadLetterRecord): string {
  const state = letter.resolution
    ? `${letter.resolution} ${time(letter.resolvedAt)}${letter.resolvedBy ? ` by ${letter.resolvedBy}` : ''}`
    : `open since ${time(letter.createdAt)}`;
  const pairs: [string, string][] = [
    ['subject', `${letter.subjectKind} ${letter.subjectId}`],
    ['step', letter.step],
    ['tries', String(letter.tryCount)],
    ['error', `${letter.errorClass}: ${letter.errorMessage}`],
    ['non-retryable', letter.nonRetryable ? 'yes' : 'no'],
    ['first failure', time(letter.firstFailureAt)],
    ['last failure', time(letter.lastFailureAt)],
  ];
  if (letter.resolutionNote) pairs.push(['note', letter.resolutionNote]);
  if (!letter.resolution) {
    const commands = deadLetterCommands(letter.subjectKind, letter.subjectId);
    pairs.push(['requeue', commands.requeue], ['discard', commands.discard]);
  }
  return `Dead letter ${letter.id} (${state})\n${fields(pairs)}`;
}

function deadLetterTable(letters: DeadLetterRecord[], withResolution: boolean): string {
  return table(
    ['DEAD LETTER', 'KIND', 'SUBJECT', 'STEP', 'TRIES', 'ERROR', 'SINCE', ...(withResolution ? ['RESOLUTION'] : [])],
    letters.map((letter) => [
      letter.id, letter.subjectKind, letter.subjectId, letter.step, String(letter.tryCount),
      truncate(`${letter.errorClass}: ${letter.errorMessage}`, 60), time(letter.createdAt),
      ...(withResolution ? [dash(letter.resolution)] : []),
    ]),
  );
}

/** Progress of a bulk action on stderr: when it starts, at most once a second, and when it ends. */
function progressLines(ctx: CliContext, done: string): BulkOptions['onProgress'] {
  let last = 0;
  return ({ matched, done: count, failed }) => {
    const finished = count + failed === matched;
    if (count + failed === 0) ctx.progress(`${matched} dead letters match; working...`);
    else if (finished || Date.now() - last >= 1000) ctx.progress(`${done} ${count} of ${matched}${failed ? ` (${failed} failed)` : ''}`);
    else return;
    last = Date.now();
  };
}

function bulkOutput(action: string, result: BulkResult): CommandOutput {
  return {
    json: result,
    human: () => {
      const lines = [`${action} ${result.done.length} of ${result.matched} matching dead letters`];
      for (const failure of result.failed) lines.push(`  failed ${failure.deadLetterId}: ${failure.error}`);
      return lines.join('\n');
    },
    exitCode: result.failed.length ? 1 : 0,
  };
}

const FILTERS = DEAD_LETTER_FILTER_OPTIONS;
const BULK_OPTIONS = {
  ...FILTERS,
  all: { type: 'boolean' as const, description: 'act on every open dead letter (required when no filter is given)' },
  'dry-run': { type: 'boolean' as const, description: 'only list what would be acted on' },
  ...DECISION_OPTIONS,
};

function bulkCommand(action: 'requeue' | 'discard'): CommandSpec {
  return {
    name: `${action}-all`,
    summary: `${action} every open dead letter matching the filters`,
    options: action === 'requeue' ? { ...BULK_OPTIONS, ...RETRY_OPTIONS } : BULK_OPTIONS,
    async run(ctx, _args, values) {
      const filter = { ...deadLetterFilter(values), includeResolved: undefined };
      if (!hasFilter(filter) && !flag(values, 'all')) {
        throw new UsageError(`dead-letters ${action}-all needs at least one filter (--kind, --step, --error-class, --provider, --handler) or --all`);
      }
      const retry = action === 'requeue' ? retryFlags(values) : undefined;
      const admin = await ctx.admin({ temporal: !flag(values, 'dry-run') });
      if (flag(values, 'dry-run')) {
        const letters = await admin.listDeadLetters({ ...filter, limit: filter.limit ?? 10_000 });
        return {
          json: { dryRun: true, matched: letters.length, items: letters.map(({ errorStack: _stack, ...letter }) => letter) },
          human: () => `would ${action} ${letters.length} dead letters${letters.length ? `\n${deadLetterTable(letters, false)}` : ''}`,
        };
      }
      const decision = { resolvedBy: operatorName(ctx), note: str(values, 'note') };
      const options = { onProgress: progressLines(ctx, action === 'requeue' ? 'requeued' : 'discarded') };
      const result = action === 'requeue'
        ? await admin.requeueDeadLetters(filter, { ...decision, retry }, options)
        : await admin.discardDeadLetters(filter, decision, options);
      return bulkOutput(action === 'requeue' ? 'requeued' : 'discarded', result);
    },
  };
}

function singleCommand(action: 'requeue' | 'discard'): CommandSpec {
  return {
    name: action,
    summary: action === 'requeue'
      ? 'run the parked step again with a fresh try count (optionally new retry settings)'
      : 'give up on the parked step: the batch or job ends failed and its failure handler runs',
    args: ['deadLetterId'],
    options: action === 'requeue' ? { ...RETRY_OPTIONS, ...DECISION_OPTIONS } : DECISION_OPTIONS,
    async run(ctx, [rawId], values) {
      const id = requireUuid('dead letter', rawId);
      const retry = action === 'requeue' ? retryFlags(values) : undefined;
      const admin = await ctx.admin();
      const decision = { resolvedBy: operatorName(ctx), note: str(values, 'note') };
      const result = action === 'requeue' ? await admin.requeueDeadLetter(id, { ...decision, retry }) : await admin.discardDeadLetter(id, decision);
      return { json: result, human: () => `${action === 'requeue' ? 'requeued' : 'discarded'} dead letter ${result.deadLetterId}` };
    },
  };
}

export const deadLettersGroup: CommandGroup = {
  name: 'dead-letters',
  summary: 'steps parked after exhausting their retries: list, peek, requeue, discard, check',
  commands: [
    {
      name: 'list',
      summary: 'open dead letters, oldest first',
      options: { ...FILTERS, 'include-resolved': { type: 'boolean', description: 'also requeued and discarded ones' }, ...LIMIT_OPTION },
      async run(ctx, _args, values) {
        const filter = deadLetterFilter(values);
        const letters = await (await ctx.admin({ temporal: false })).listDeadLetters(filter);
        return {
          json: { items: letters },
          human: () => (letters.length ? deadLetterTable(letters, Boolean(filter.includeResolved)) : 'no dead letters match'),
        };
      },
    },
    {
      name: 'peek',
      summary: 'the oldest open dead letter matching the filters, left in place',
      options: FILTERS,
      async run(ctx, _args, values) {
        const letter = await (await ctx.admin({ temporal: false })).peekDeadLetter({ ...deadLetterFilter(values), includeResolved: undefined });
        return {
          json: { deadLetter: letter },
          human: () => (letter ? `${deadLetterBlock(letter)}${letter.errorStack ? `\n\n  stack:\n${indent(letter.errorStack, '    ')}` : ''}` : 'no open dead letters match'),
        };
      },
    },
    singleCommand('requeue'),
    singleCommand('discard'),
    bulkCommand('requeue'),
    bulkCommand('discard'),
    {
      name: 'check',
      summary: 'compare open dead letters in PostgreSQL with parked workflows in Temporal (exit 1 on mismatches)',
      options: { 'all-task-queues': { type: 'boolean', description: 'check parked workflows of every task queue, not only BATCHKEEPER_TASK_QUEUE' } },
      async run(ctx, _args, values) {
        const report = await (await ctx.admin()).checkDeadLetterConsistency({
          taskQueue: flag(values, 'all-task-queues') ? undefined : ctx.taskQueue,
        });
        return {
          json: { consistent: report.mismatches.length === 0, ...report },
          human: () => {
            const head = `checked ${report.checkedInPostgres} open dead letters in PostgreSQL and ${report.checkedInTemporal} parked workflows in Temporal`;
            if (!report.mismatches.length) return `${head}: consistent`;
            return `${head}: ${report.mismatches.length} mismatches\n${table(
              ['WORKFLOW', 'DEAD LETTER', 'PROBLEM'],
              report.mismatches.map((mismatch) => [mismatch.workflowId, dash(mismatch.deadLetterId), mismatch.problem]),
            )}`;
          },
          exitCode: report.mismatches.length ? 1 : 0,
        };
      },
    },
  ],
};

/** `batchkeeper batches ...`: find, inspect and act on provider batches. */
import { requireUuid } from '../../client/ids';
import { NotApplicableError } from '../../client/errors';
import { batchStateQuery } from '../../domain/definitions';
import type { BatchWorkflowState, RequestStatus } from '../../domain/types';
import type { BatchRecord } from '../../db/batches-store';
import {
  DECISION_OPTIONS, LIMIT_OPTION, RETRY_OPTIONS, UsageError, isoTime, oneOf, operatorName, parseDuration, positiveInt,
  retryFlags, str, type CommandGroup, type CommandSpec,
} from '../command';
import type { CliContext } from '../context';
import { dash, fields, table, time, timeWithDistance, truncate } from '../format';
import { deadLetterBlock } from './dead-letters';
import { countCommand, listCommand, liveState, stepsTable, timelineTable } from './workflows';

/** Checks the id before connecting anywhere, then connects. */
async function clientFor(ctx: CliContext, batchId: string) {
  requireUuid('batch', batchId);
  return ctx.client();
}

const REQUEST_STATUSES: readonly RequestStatus[] = ['pending', 'succeeded', 'errored', 'expired', 'canceled', 'missing'];

function overview(batch: BatchRecord, executionStatus: string, live: BatchWorkflowState | null): string {
  const counts: Record<string, number | undefined> = { ...batch.requestCounts };
  const countText = ['succeeded', 'errored', 'expired', 'canceled', 'processing']
    .filter((key) => counts[key] !== undefined).map((key) => `${key} ${counts[key]}`).join(', ');
  const pairs: [string, string][] = [
    ['status', batch.status],
    ['provider/model', `${batch.provider} / ${batch.model}`],
    ['handler', dash(batch.handlerName)],
    ['provider batch', batch.providerBatchId ? `${batch.providerBatchId} (${dash(batch.providerStatus)})` : '-'],
    ['requests', `${batch.requestCount}${countText ? ` (${countText})` : ''}`],
    ['polls', `${batch.pollCount}, last ${time(batch.lastPolledAt)}, next ${batch.nextPollAt ? timeWithDistance(batch.nextPollAt) : '-'}`],
    ['deadline', batch.deadlineAt ? timeWithDistance(batch.deadlineAt) : '-'],
    ['created', time(batch.createdAt)],
    ['submitted', time(batch.submittedAt)],
    ['ended', time(batch.endedAt)],
    ['results stored', time(batch.resultsFetchedAt)],
    ['handler run', time(batch.handlerDispatchedAt)],
    ['tokens', `${batch.inputTokens} in, ${batch.outputTokens} out`],
  ];
  if (batch.failureCode || batch.failureMessage) pairs.push(['failure', `${dash(batch.failureCode)}: ${truncate(batch.failureMessage, 200)} (${time(batch.failedAt)})`]);
  pairs.push(['workflow', `${batch.workflowId} (${executionStatus.toLowerCase()})`]);
  if (live) {
    const next = live.phase === 'polling' && live.nextPollAt ? `, next poll ${timeWithDistance(live.nextPollAt)}` : '';
    const polls = `${live.pollCount} poll${live.pollCount === 1 ? '' : 's'}`;
    pairs.push(['live state', `phase ${live.phase}, status ${live.status}, ${polls}${next}${live.cancelRequested ? ', cancel requested' : ''}`]);
  }
  return `Batch ${batch.id}\n${fields(pairs)}`;
}

const show: CommandSpec = {
  name: 'show',
  summary: 'state, counts, polls, deadline, try counts per step, open dead letter and timeline of one batch',
  args: ['batchId'],
  async run(ctx, [batchId]) {
    const client = await clientFor(ctx, batchId);
    const details = await client.getBatch(batchId);
    const timeline = await client.getTimeline('batch', details.batch.id);
    const live = await liveState(client.temporal, details.batch.workflowId, batchStateQuery);
    return {
      json: { ...details, workflow: { workflowId: details.batch.workflowId, executionStatus: live.executionStatus }, live: live.state, timeline },
      human: () => [
        overview(details.batch, live.executionStatus, live.state),
        `Steps\n${stepsTable(details.steps)}`,
        details.deadLetter ? deadLetterBlock(details.deadLetter) : 'Dead letter: none open',
        `Timeline\n${timelineTable(timeline)}`,
      ].join('\n\n'),
    };
  },
};

const results: CommandSpec = {
  name: 'results',
  summary: 'per-request results in submission order (prints result bodies)',
  args: ['batchId'],
  options: {
    status: { type: 'string', value: 'S', description: `only requests in this status: ${REQUEST_STATUSES.join(', ')}` },
    after: { type: 'string', value: 'POS', description: 'start after this position (the "next" of the previous page)' },
    ...LIMIT_OPTION,
  },
  async run(ctx, [batchId], values) {
    requireUuid('batch', batchId);
    const status = oneOf('--status', str(values, 'status'), REQUEST_STATUSES);
    const afterRaw = str(values, 'after');
    const after = afterRaw === undefined ? undefined : afterRaw === '0' ? 0 : positiveInt(values, 'after', Number.MAX_SAFE_INTEGER);
    const limit = positiveInt(values, 'limit', 1000);
    const page = await (await ctx.client()).listResults(batchId, { status, after, limit });
    return {
      json: page,
      human: () => {
        if (!page.items.length) return 'no results match';
        const rows = table(
          ['POS', 'CUSTOM ID', 'STATUS', 'TOKENS', 'ERROR', 'RESULT'],
          page.items.map((item) => [
            String(item.position), item.customId, item.status,
            item.inputTokens === null ? '-' : `${item.inputTokens}/${item.outputTokens ?? 0}`,
            item.errorCode ? `${item.errorCode}${item.errorMessage ? `: ${truncate(item.errorMessage, 60)}` : ''}` : '-',
            item.result === null || item.result === undefined ? '-' : JSON.stringify(item.result),
          ]),
        );
        return page.next === undefined ? rows : `${rows}\nmore: --after ${page.next}`;
      },
    };
  },
};

const simpleActions: CommandSpec[] = [
  {
    name: 'poll-now',
    summary: 'poll the provider now instead of at the next scheduled time',
    args: ['batchId'],
    async run(ctx, [batchId]) {
      await (await clientFor(ctx, batchId)).pollNow(batchId);
      return { json: { batchId, pollRequested: true }, human: () => `poll requested for batch ${batchId}` };
    },
  },
  {
    name: 'cancel',
    summary: 'cancel at the provider; partial results are collected and the handler told',
    args: ['batchId'],
    options: { reason: { type: 'string', value: 'R', description: 'reason recorded with the cancel' } },
    async run(ctx, [batchId], values) {
      const result = await (await clientFor(ctx, batchId)).cancelBatch(batchId, str(values, 'reason'));
      return { json: { batchId, ...result }, human: () => `cancel requested for batch ${batchId}: status ${result.status}` };
    },
  },
  {
    name: 'extend-deadline',
    summary: 'move the deadline later, by a duration or to a time',
    args: ['batchId'],
    options: {
      by: { type: 'string', value: 'DURATION', description: 'e.g. 30m, 2h, 1d' },
      until: { type: 'string', value: 'ISO', description: 'new deadline time' },
    },
    async run(ctx, [batchId], values) {
      requireUuid('batch', batchId);
      const by = str(values, 'by');
      const until = str(values, 'until');
      if ((by === undefined) === (until === undefined)) throw new UsageError('give exactly one of --by DURATION or --until ISO');
      const change = by !== undefined ? { byMs: parseDuration('--by', by) } : { deadlineAt: isoTime('--until', until) };
      const result = await (await ctx.client()).extendDeadline(batchId, change);
      return { json: { batchId, ...result }, human: () => `deadline of batch ${batchId} is now ${timeWithDistance(result.deadlineAt)}` };
    },
  },
];

/** requeue/discard by batch id: acts on the batch's open dead letter. */
function resolveByBatch(action: 'requeue' | 'discard'): CommandSpec {
  return {
    name: action,
    summary: action === 'requeue'
      ? "run the batch's dead-lettered step again with a fresh try count"
      : "discard the batch's dead-lettered step: the batch ends failed and its handler's onFailure runs",
    args: ['batchId'],
    options: action === 'requeue' ? { ...RETRY_OPTIONS, ...DECISION_OPTIONS } : DECISION_OPTIONS,
    async run(ctx, [batchId], values) {
      requireUuid('batch', batchId);
      const retry = action === 'requeue' ? retryFlags(values) : undefined;
      const { deadLetter, batch } = await (await ctx.client()).getBatch(batchId);
      if (!deadLetter) throw new NotApplicableError(`batch ${batch.id} has no open dead letter: nothing to ${action}`);
      const admin = await ctx.admin();
      const decision = { resolvedBy: operatorName(ctx), note: str(values, 'note') };
      const result = action === 'requeue'
        ? await admin.requeueDeadLetter(deadLetter.id, { ...decision, retry })
        : await admin.discardDeadLetter(deadLetter.id, decision);
      return {
        json: { batchId: batch.id, step: deadLetter.step, ...result },
        human: () => action === 'requeue'
          ? `requeued step ${deadLetter.step} of batch ${batch.id} (dead letter ${result.deadLetterId}, was at ${deadLetter.tryCount} tries)`
          : `discarded step ${deadLetter.step} of batch ${batch.id} (dead letter ${result.deadLetterId}): the batch ends failed`,
      };
    },
  };
}

export const batchesGroup: CommandGroup = {
  name: 'batches',
  summary: 'provider batches: list, count, show, results, poll-now, cancel, extend-deadline, requeue, discard',
  commands: [
    listCommand('batch'), countCommand('batch'), show, results, ...simpleActions, resolveByBatch('requeue'), resolveByBatch('discard'),
  ],
};

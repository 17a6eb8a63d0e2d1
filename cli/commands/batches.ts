/** `batchkeeper batches ...`: find, inspect and act on provider batches. */
import { requireUuid } from '../../client/ids';
import { batchStateQuery } from '../../domain/definitions';
import type { BatchWorkflowState } from '../../domain/types';
import type { BatchRecord } from '../../db/batches-store';
import { UsageError, isoTime, parseDuration, str, type CommandGroup, type CommandSpec } from '../command';
import type { CliContext } from '../context';
import { dash, fields, time, timeWithDistance, truncate } from '../format';
import { deadLetterBlock } from './dead-letters';
import { results } from './batch-results';
import { submit } from './batch-submit';
import { wait } from './batch-wait';
import { resolveBySubject } from './resolve-by-subject';
import { countCommand, listCommand, liveState, stepsTable, timelineTable } from './workflows';

/** Checks the id before connecting anywhere, then connects. */
async function clientFor(ctx: CliContext, batchId: string) {
  requireUuid('batch', batchId);
  return ctx.client();
}

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
    const next = live.phase === 'polling' && live.nextPollAt ? `, next poll ${timeWithDistance(live.nextPollAt)}`
      : live.phase === 'polling' && live.pollingByRetries ? `, polling on activity retries since ${time(new Date(live.pollingByRetries.since))}` : '';
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

export const batchesGroup: CommandGroup = {
  name: 'batches',
  summary: 'provider batches: list, count, show, results, submit, wait, poll-now, cancel, extend-deadline, requeue, discard',
  commands: [
    listCommand('batch'), countCommand('batch'), show, results, submit, wait, ...simpleActions, resolveBySubject('batch', 'requeue'), resolveBySubject('batch', 'discard'),
  ],
};

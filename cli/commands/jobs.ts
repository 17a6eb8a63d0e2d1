/** `batchkeeper jobs ...`: generic async jobs. Job inputs and outputs are never printed, only their sizes. */
import { requireUuid } from '../../client/ids';
import { ValidationError } from '../../client/errors';
import { jobStateQuery } from '../../domain/definitions';
import type { JobRecord } from '../../db/jobs-store';
import { str, type CommandGroup } from '../command';
import { dash, fields, truncate, time } from '../format';
import { deadLetterBlock } from './dead-letters';
import { resolveBySubject } from './resolve-by-subject';
import { countCommand, listCommand, liveState, stepsTable, timelineTable } from './workflows';

const byteSize = (value: unknown) => (value === null || value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8'));

/** The job record without its input and output bodies. */
function withoutBodies({ input, output, ...job }: JobRecord) {
  return { ...job, inputBytes: byteSize(input), outputBytes: byteSize(output) };
}

export const jobsGroup: CommandGroup = {
  name: 'jobs',
  summary: 'generic async jobs: list, count, show, start, requeue, discard',
  commands: [
    listCommand('job'),
    countCommand('job'),
    {
      name: 'show',
      summary: 'status, try counts per step, open dead letter and timeline of one job',
      args: ['jobId'],
      async run(ctx, [jobId]) {
        requireUuid('job', jobId);
        const client = await ctx.client();
        const details = await client.getJob(jobId);
        const timeline = await client.getTimeline('job', details.job.id);
        const live = await liveState(client.temporal, details.job.workflowId, jobStateQuery);
        const job = withoutBodies(details.job);
        return {
          json: { ...details, job, workflow: { workflowId: job.workflowId, executionStatus: live.executionStatus }, live: live.state, timeline },
          human: () => {
            const pairs: [string, string][] = [
              ['status', job.status],
              ['type', job.jobType],
              ['input', job.inputRef ? `ref ${job.inputRef}` : `${job.inputBytes} bytes (not shown)`],
              ['output', `${job.outputBytes} bytes (not shown)`],
              ['created', time(job.createdAt)],
              ['started', time(job.startedAt)],
              ['finished', time(job.finishedAt)],
            ];
            if (job.failureCode || job.failureMessage) pairs.push(['failure', `${dash(job.failureCode)}: ${truncate(job.failureMessage, 200)}`]);
            pairs.push(['workflow', `${job.workflowId} (${live.executionStatus.toLowerCase()})`]);
            if (live.state) pairs.push(['live state', `phase ${live.state.phase}, status ${live.state.status}`]);
            return [
              `Job ${job.id}\n${fields(pairs)}`,
              `Steps\n${stepsTable(details.steps)}`,
              details.deadLetter ? deadLetterBlock(details.deadLetter) : 'Dead letter: none open',
              `Timeline\n${timelineTable(timeline)}`,
            ].join('\n\n');
          },
        };
      },
    },
    {
      name: 'start',
      summary: 'start a job of a registered type; the same idempotency key returns the same job',
      args: ['type'],
      options: {
        input: { type: 'string', value: 'JSON', description: 'small JSON input (at most 16 KB)' },
        'input-ref': { type: 'string', value: 'REF', description: 'reference to a larger input the executor resolves' },
        'idempotency-key': { type: 'string', value: 'K', description: 'starting again with this key returns the same job' },
      },
      async run(ctx, [type], values) {
        const rawInput = str(values, 'input');
        let input: unknown;
        if (rawInput !== undefined) {
          try {
            input = JSON.parse(rawInput);
          } catch {
            throw new ValidationError('--input', 'is not valid JSON'); // the parser's message would quote the input
          }
        }
        const result = await (await ctx.client()).startJob({
          type, input, inputRef: str(values, 'input-ref'), idempotencyKey: str(values, 'idempotency-key'),
        });
        return {
          json: result,
          human: () => `${result.created ? 'started' : 'found existing'} job ${result.jobId} (workflow ${result.workflowId})`,
        };
      },
    },
    resolveBySubject('job', 'requeue'),
    resolveBySubject('job', 'discard'),
  ],
};

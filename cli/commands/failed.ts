/** `batchkeeper failed`: failed and dead-lettered batches and jobs (the failed_work view), most recent failure first. */
import { LIMIT_OPTION, flag, oneOf, positiveInt, str, type CommandGroup } from '../command';
import { dash, table, time, truncate } from '../format';

export const failedGroup: CommandGroup = {
  name: 'failed',
  summary: 'failed and dead-lettered batches and jobs, most recent failure first',
  single: true,
  commands: [
    {
      name: 'failed',
      summary: 'failed and dead-lettered batches and jobs, most recent failure first',
      options: {
        kind: { type: 'string', value: 'batch|job', description: 'only batches or only jobs' },
        'dead-lettered': { type: 'boolean', description: 'only those with an open dead letter' },
        provider: { type: 'string', value: 'P', description: 'batch provider' },
        handler: { type: 'string', value: 'H', description: 'batch handler name or job type' },
        ...LIMIT_OPTION,
      },
      async run(ctx, _args, values) {
        const items = await (await ctx.admin({ temporal: false })).listFailedWork({
          subjectKind: oneOf('--kind', str(values, 'kind'), ['batch', 'job'] as const),
          deadLetteredOnly: flag(values, 'dead-lettered'),
          provider: str(values, 'provider'),
          typeOrHandler: str(values, 'handler'),
          limit: positiveInt(values, 'limit'),
        });
        return {
          json: { items },
          human: () =>
            items.length
              ? table(
                  ['KIND', 'ID', 'STATUS', 'HANDLER/TYPE', 'STEP', 'TRIES', 'DEAD LETTER', 'ERROR', 'LAST FAILURE'],
                  items.map((item) => [
                    item.subjectKind, item.subjectId, item.status, dash(item.typeOrHandler), dash(item.step), dash(item.tryCount),
                    dash(item.deadLetterId), truncate(item.errorClass ? `${item.errorClass}: ${item.errorMessage ?? ''}` : item.errorMessage, 50),
                    time(item.lastFailureAt),
                  ]),
                )
              : 'no failed work matches',
        };
      },
    },
  ],
};

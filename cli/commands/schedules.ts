/** `batchkeeper schedules install`: the Temporal schedule of the recovery sweep. */
import { ValidationError } from '../../client/errors';
import { installSweepSchedule, SWEEP_SCHEDULE_ID } from '../../client/schedules';
import { parseDuration, str, type CommandGroup } from '../command';
import { duration } from '../format';

function scheduleId(raw: string | undefined): string | undefined {
  if (raw !== undefined && !/^[A-Za-z0-9_.:-]{1,200}$/.test(raw)) throw new ValidationError('--schedule-id', 'must be 1-200 characters of [A-Za-z0-9_.:-]');
  return raw;
}

export const schedulesGroup: CommandGroup = {
  name: 'schedules',
  summary: 'Temporal schedules: install the recovery sweep',
  commands: [
    {
      name: 'install',
      summary: 'create the sweep schedule, or bring an existing one to these settings (safe to run again)',
      options: {
        every: { type: 'string', value: 'DURATION', description: 'interval between sweeps (default 1h)' },
        'catchup-window': { type: 'string', value: 'DURATION', description: 'how far back missed runs are caught up (default 1h)' },
        'schedule-id': { type: 'string', value: 'ID', description: `schedule id (default ${SWEEP_SCHEDULE_ID})` },
      },
      async run(ctx, _args, values) {
        const every = parseDuration('--every', str(values, 'every') ?? '1h');
        if (every < 1000) throw new ValidationError('--every', 'must be at least 1s');
        const catchupWindow = parseDuration('--catchup-window', str(values, 'catchup-window') ?? '1h');
        const result = await installSweepSchedule(await ctx.temporal(), {
          taskQueue: ctx.taskQueue, every: `${every}ms`, catchupWindow: `${catchupWindow}ms`, scheduleId: scheduleId(str(values, 'schedule-id')),
        });
        return {
          json: { ...result, taskQueue: ctx.taskQueue, everyMs: every, catchupWindowMs: catchupWindow },
          human: () =>
            `${result.created ? 'created' : 'updated'} schedule ${result.scheduleId}: sweep every ${duration(every)} on task queue ${ctx.taskQueue}, catch-up window ${duration(catchupWindow)}`,
        };
      },
    },
  ],
};

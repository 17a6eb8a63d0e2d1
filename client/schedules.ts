import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { SWEEP_WORKFLOW_TYPE } from '../domain/workflow-ids';

export const SWEEP_SCHEDULE_ID = 'batchkeeper-sweep';

/**
 * Installs the sweep schedule, or brings an existing one to these settings: hourly by default, overlap SKIP (a slow
 * sweep is never doubled), an explicit catch-up window (the server default would replay a year of missed runs).
 */
export async function installSweepSchedule(
  client: Client,
  options: { taskQueue: string; every?: string; catchupWindow?: string; scheduleId?: string },
): Promise<{ scheduleId: string; created: boolean }> {
  const scheduleId = options.scheduleId ?? SWEEP_SCHEDULE_ID;
  const spec = { intervals: [{ every: (options.every ?? '1 hour') as '1 hour' }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: (options.catchupWindow ?? '1 hour') as '1 hour' };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: SWEEP_WORKFLOW_TYPE,
    taskQueue: options.taskQueue,
    args: [{}] as [{ limit?: number }],
    workflowId: `${scheduleId}-run`,
    staticSummary: 'batchkeeper sweep: recover lost batch and job workflows, expire overdue batches',
  };
  try {
    await client.schedule.create({ scheduleId, spec, policies, action });
    return { scheduleId, created: true };
  } catch (error) {
    if (!(error instanceof ScheduleAlreadyRunning)) throw error;
    await client.schedule.getHandle(scheduleId).update((previous) => ({ ...previous, spec, policies, action }));
    return { scheduleId, created: false };
  }
}

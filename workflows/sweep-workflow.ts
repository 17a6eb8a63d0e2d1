/** Started by the hourly schedule: recover batches and jobs whose workflow was lost, then expire overdue ones. */
import { proxyActivities, setCurrentDetails } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { SweepResult } from '../activities';

const { sweepOrphans } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '2 minutes',
  retry: { maximumAttempts: 3, initialInterval: '10 seconds' },
});

export async function sweepWorkflow(input: { limit?: number } = {}): Promise<SweepResult> {
  setCurrentDetails('Sweeping batches and jobs whose workflow is closed or missing...');
  const result = await sweepOrphans({ limit: input.limit });
  setCurrentDetails(
    [
      `**Checked:** ${result.checkedBatches} batches, ${result.checkedJobs} jobs`,
      `Recovered: ${result.recovered} (past deadline: ${result.recoveredPastDeadline}), dispatched: ${result.dispatched}, ` +
        `expiry nudged: ${result.expiredNudged}, jobs recovered: ${result.jobsRecovered}, parked: ${result.parked}, failed: ${result.failed}`,
      ...result.failures.slice(0, 10).map((failure) => `- ${failure.id}: ${failure.error}`),
    ].join('\n\n'),
  );
  return result;
}

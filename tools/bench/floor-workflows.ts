/**
 * The floor for the orchestration-overhead measurement: per batch, the same durable timers and the same number of
 * activities as batchWorkflow made for that batch, with activities that do nothing. Bench only: never registered on
 * the batchkeeper task queue (the floor worker in bench/overhead.ts runs it on its own queue).
 */
import { proxyActivities, sleep } from '@temporalio/workflow';

export interface FloorActivities {
  noop(input: { step: string }): Promise<{ ok: true }>;
}

export interface FloorWorkflowInput {
  /** Polls batchWorkflow made for the matching batch. */
  polls: number;
  pollScheduleMs: number[];
}

// 30 s, like the heartbeat timeout of batchWorkflow's steps: the timeout timer each activity leaves behind fires as
// soon after the activity as ours does (bench/overhead.ts waits for these tails between rounds).
const { noop } = proxyActivities<FloorActivities>({ startToCloseTimeout: '30 seconds' });

export async function floorWorkflow(input: FloorWorkflowInput): Promise<{ polls: number }> {
  const delay = (index: number) => input.pollScheduleMs[Math.min(index, input.pollScheduleMs.length - 1)];
  // batchWorkflow: loadBatchPlan, submitBatch, then per poll a timer and pollBatch, then fetchResults,
  // planResubmission and dispatchHandler.
  await noop({ step: 'load' });
  await noop({ step: 'submit' });
  for (let index = 0; index < input.polls; index += 1) {
    await sleep(delay(index));
    await noop({ step: 'poll' });
  }
  await noop({ step: 'fetch_results' });
  await noop({ step: 'plan_resubmission' });
  await noop({ step: 'dispatch_handler' });
  return { polls: input.polls };
}

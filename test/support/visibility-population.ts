/**
 * A known population of batches, jobs and sweep runs in a namespace of its own, for checking visibility queries, and
 * what each of its workflow runs is according to Temporal's own record of it (describe: the run's mutable state, not
 * visibility) and PostgreSQL (try counts):
 *   - OpenAI and Anthropic batches still running at the provider (one with a 7-day deadline), one ended, one
 *     dead-lettered at its handler, one expired, one failed at the provider, one on a task queue nobody polls;
 *   - a job that succeeded on its third attempt, one that succeeded at once, one dead-lettered after two tries;
 *   - a batch whose workflow an operator terminated, restarted by the sweep Schedule, installed and triggered here.
 */
import { randomUUID } from 'node:crypto';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import type { BatchHandlerRegistry, JobExecutorRegistry } from '../../activities/handlers';
import { BatchkeeperClient } from '../../client/batchkeeper-client';
import { installSweepSchedule } from '../../client/schedules';
import { DEADLINE, DEAD_LETTERED, FAILED_STEP, HANDLER, KIND, PROVIDER, STATUS, TRY_COUNT } from '../../domain/search-attributes';
import type { SweepResult } from '../../activities';
import { createTestEnvironment, FAST_SCHEDULE_MS, type TestEnvironment } from './environment';
import { handlers as recordingHandlers } from './recording-handlers';
import { waitFor } from './wait';

/** One workflow run as Temporal records it, with the try count PostgreSQL keeps for a job's execute step. */
export interface Run {
  workflowId: string;
  runId: string;
  type: string;
  /** As visibility queries name it: Running, Completed, Terminated, ... */
  executionStatus: string;
  taskQueue: string;
  startTime: Date;
  kind?: string;
  status?: string;
  provider?: string;
  handler?: string;
  deadLettered?: boolean;
  failedStep?: string;
  deadline?: Date;
  tryCount?: number;
  /** Jobs: attempts of the execute step, from step_attempts. */
  executeAttempts?: number;
}

export interface Population {
  env: TestEnvironment;
  namespace: string;
  runs: Run[];
  /** Between the first and the second half of the submissions (for --since / --until). */
  midpoint: Date;
  /** The sweep run the Schedule started on trigger, and what it did. */
  sweep: { workflowId: string; result: SweepResult };
  /** The batch the sweep recovered: its terminated run and the new one. */
  recovered: { workflowId: string; terminatedRunId: string };
  refresh(): Promise<void>;
}

const SLOW = 'slow-marker';
const FAILS = 'fail-marker';
const WEEK_MS = 7 * 86_400_000;

const handlers: BatchHandlerRegistry = {
  ...recordingHandlers,
  broken: {
    async onComplete() {
      throw new Error('handler bug: downstream store unavailable');
    },
  },
};

const jobExecutors: JobExecutorRegistry = {
  'retry-twice': {
    async execute(_input, { attempt }) {
      if (attempt < 3) throw new Error(`transient failure on attempt ${attempt}`);
      return { attempt };
    },
  },
  'ok-job': { async execute() { return { ok: true }; } },
  'broken-job': { async execute() { throw new Error('downstream store unavailable'); } },
};

const EXECUTION_STATUS: Record<string, string> = {
  RUNNING: 'Running', COMPLETED: 'Completed', FAILED: 'Failed', CANCELLED: 'Canceled', TERMINATED: 'Terminated',
  CONTINUED_AS_NEW: 'ContinuedAsNew', TIMED_OUT: 'TimedOut',
};

function toRun(description: WorkflowExecutionDescription): Run {
  const attributes = description.typedSearchAttributes;
  return {
    workflowId: description.workflowId,
    runId: description.runId,
    type: description.type,
    executionStatus: EXECUTION_STATUS[description.status.name] ?? description.status.name,
    taskQueue: description.taskQueue,
    startTime: description.startTime,
    kind: attributes.get(KIND),
    status: attributes.get(STATUS),
    provider: attributes.get(PROVIDER),
    handler: attributes.get(HANDLER),
    deadLettered: attributes.get(DEAD_LETTERED),
    failedStep: attributes.get(FAILED_STEP),
    deadline: attributes.get(DEADLINE),
    tryCount: attributes.get(TRY_COUNT),
  };
}

const requests = (...customIds: string[]) =>
  customIds.map((customId) => ({ customId, params: { max_tokens: 16, messages: [{ role: 'user', content: customId }] } }));

export async function buildPopulation(namespace: string): Promise<Population> {
  const env = await createTestEnvironment({
    namespace,
    handlers,
    jobExecutors,
    retry: {
      defaults: { maximumAttempts: 3, initialIntervalMs: 100, maximumIntervalMs: 300 },
      handlers: { broken: { maximumAttempts: 2 } },
      jobTypes: { 'broken-job': { maximumAttempts: 2 } },
    },
  });
  // Batches holding SLOW stay at the provider for an hour; FAILS fails there.
  env.fake.configure({ batchRules: [{ match: { customId: SLOW }, processingMs: 3_600_000 }, { match: { customId: FAILS }, outcome: 'failed' }] });
  const submit = (provider: 'openai' | 'anthropic', handler: string, ids: string[], extra: { maxAgeMs?: number } = {}) =>
    env.client.submitBatch({ provider, model: 'model-x', handler, requests: requests(...ids), pollScheduleMs: FAST_SCHEDULE_MS, ...extra });

  const runningOpenai = await submit('openai', 'record', [SLOW, 'a-1']);
  const runningAnthropic = await submit('anthropic', 'record', [SLOW, 'b-1'], { maxAgeMs: WEEK_MS });
  const toRecover = await submit('anthropic', 'record', [SLOW, 'c-1'], { maxAgeMs: WEEK_MS });
  const ended = await submit('openai', 'record', ['d-1', 'd-2']);
  const jobRetried = await env.client.startJob({ type: 'retry-twice', input: {} });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const midpoint = new Date();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const deadLettered = await submit('openai', 'broken', ['e-1']);
  const expired = await submit('anthropic', 'record', [SLOW, 'f-1'], { maxAgeMs: 1000 });
  const failed = await submit('openai', 'record', [FAILS, 'g-1']);
  const jobOk = await env.client.startJob({ type: 'ok-job', input: {} });
  const jobDeadLettered = await env.client.startJob({ type: 'broken-job', input: {} });
  // No worker polls this task queue: the workflow stays Running, the batch pending.
  const elsewhere = new BatchkeeperClient({ client: env.temporal, pool: env.pool, taskQueue: `nobody-polls-${randomUUID()}` });
  const unpolled = await elsewhere.submitBatch({ provider: 'openai', model: 'model-x', handler: 'record', requests: requests('h-1') });

  for (const { batchId } of [ended, expired, failed]) await env.client.waitForBatch(batchId, { timeoutMs: 60_000 });
  for (const { jobId } of [jobRetried, jobOk]) await env.client.waitForJob(jobId, { timeoutMs: 60_000 });
  for (const { batchId } of [runningOpenai, runningAnthropic, toRecover]) {
    await waitFor(async () => (await env.client.getBatch(batchId)).batch.status === 'in_progress', 30_000, `batch ${batchId} at the provider`);
  }
  await waitFor(async () => (await env.client.batchState(deadLettered.batchId)).phase === 'dead_lettered', 30_000, 'the broken handler dead-lettered');
  await waitFor(async () => (await env.client.getJob(jobDeadLettered.jobId)).deadLetter, 30_000, 'the broken job dead-lettered');

  // An operator terminates a batch's workflow; the sweep, started by its Schedule, restarts it.
  const terminated = await env.temporal.workflow.getHandle(toRecover.workflowId).describe();
  await env.temporal.workflow.getHandle(toRecover.workflowId).terminate('operator mistake');
  const { scheduleId } = await installSweepSchedule(env.temporal, { taskQueue: env.taskQueue });
  const schedule = env.temporal.schedule.getHandle(scheduleId);
  await schedule.trigger();
  const action = await waitFor(async () => (await schedule.describe()).info.recentActions.at(-1), 30_000, 'the Schedule starts a sweep');
  const sweepId = action.action.workflow.workflowId;
  const sweepResult = await env.temporal.workflow.getHandle(sweepId).result() as SweepResult;
  await waitFor(async () => (await env.client.batchState(toRecover.batchId)).status === 'in_progress', 30_000, 'the recovered batch polls again');

  const workflowIds = [runningOpenai, runningAnthropic, toRecover, ended, deadLettered, expired, failed, unpolled, jobRetried, jobOk, jobDeadLettered]
    .map((item) => item.workflowId);
  const jobsByWorkflow = new Map([jobRetried, jobOk, jobDeadLettered].map((job) => [job.workflowId, job.jobId]));
  const population: Population = {
    env, namespace, runs: [], midpoint,
    sweep: { workflowId: sweepId, result: sweepResult },
    recovered: { workflowId: toRecover.workflowId, terminatedRunId: terminated.runId },
    async refresh() {
      const runs: Run[] = [];
      for (const workflowId of workflowIds) runs.push(toRun(await env.temporal.workflow.getHandle(workflowId).describe()));
      runs.push(toRun(await env.temporal.workflow.getHandle(toRecover.workflowId, terminated.runId).describe()));
      for (const recent of (await schedule.describe()).info.recentActions) {
        runs.push(toRun(await env.temporal.workflow.getHandle(recent.action.workflow.workflowId).describe()));
      }
      for (const run of runs) {
        const jobId = jobsByWorkflow.get(run.workflowId);
        if (jobId) run.executeAttempts = (await env.client.getJob(jobId)).steps.find((step) => step.step === 'execute')?.totalAttempts;
      }
      population.runs = runs;
    },
  };
  await population.refresh();
  return population;
}

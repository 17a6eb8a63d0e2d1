/**
 * How batch and job workflows are started, shared by the client (first start) and the sweep (restart of a workflow
 * that was terminated or lost): same id, search attributes and Temporal Web summary either way.
 */
import type { Client, WorkflowStartOptions } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { HANDLER, KIND, PROVIDER, STATUS } from './search-attributes';
import type { BatchStatus, JobStatus } from './statuses';
import type { BatchWorkflowInput, JobWorkflowInput } from './types';
import { BATCH_WORKFLOW_TYPE, JOB_WORKFLOW_TYPE } from './workflow-ids';

/** The facts of a stored batch that its workflow start shows. */
export interface BatchStartFacts {
  id: string;
  workflowId: string;
  status: BatchStatus;
  provider: string;
  model: string;
  requestCount: number;
  handlerName: string | null;
}

export interface JobStartFacts {
  id: string;
  workflowId: string;
  status: JobStatus;
  jobType: string;
  inputRef: string | null;
}

type StartOptions = Omit<WorkflowStartOptions, 'workflowIdConflictPolicy' | 'workflowIdReusePolicy'>;

export function batchStartOptions(batch: BatchStartFacts, taskQueue: string, input: Omit<BatchWorkflowInput, 'batchId'> = {}): StartOptions {
  return {
    taskQueue,
    workflowId: batch.workflowId,
    args: [{ batchId: batch.id, ...input } satisfies BatchWorkflowInput],
    typedSearchAttributes: [
      { key: KIND, value: 'batch' },
      { key: STATUS, value: batch.status },
      { key: PROVIDER, value: batch.provider },
      { key: HANDLER, value: batch.handlerName ?? '' },
    ],
    staticSummary: `${batch.provider} ${batch.model} · ${batch.requestCount} requests · handler ${batch.handlerName ?? 'none'}`,
    staticDetails: [
      `batch ${batch.id}`, `provider: ${batch.provider}`, `model: ${batch.model}`, `requests: ${batch.requestCount}`,
      `handler: ${batch.handlerName ?? 'none'}`,
    ].map((line) => `- ${line}`).join('\n'),
  };
}

export function jobStartOptions(job: JobStartFacts, taskQueue: string): StartOptions {
  return {
    taskQueue,
    workflowId: job.workflowId,
    args: [{ jobId: job.id } satisfies JobWorkflowInput],
    typedSearchAttributes: [
      { key: KIND, value: 'job' },
      { key: STATUS, value: job.status === 'pending' ? 'running' : job.status },
      { key: HANDLER, value: job.jobType },
    ],
    staticSummary: `job ${job.jobType}`,
    staticDetails: [`job ${job.id}`, `type: ${job.jobType}`, ...(job.inputRef ? [`input ref: ${job.inputRef}`] : [])]
      .map((line) => `- ${line}`).join('\n'),
  };
}

/**
 * `first`: start unless the workflow runs or ever ran (submitting is idempotent; a finished batch never reruns).
 * `restart`: start a new run unless one is running (the sweep recovers a workflow that was closed or lost).
 */
export type StartPolicy = 'first' | 'restart';

const POLICIES = {
  first: { workflowIdConflictPolicy: 'USE_EXISTING', workflowIdReusePolicy: 'REJECT_DUPLICATE' },
  restart: { workflowIdConflictPolicy: 'FAIL', workflowIdReusePolicy: 'ALLOW_DUPLICATE' },
} as const;

/**
 * Starts the workflow of a stored batch or job under `policy`. False when the start was refused: under `restart`
 * because a run is going, under `first` because a run has already closed (a running one is simply kept).
 */
export async function startSubjectWorkflow(
  temporal: Client,
  subject: { kind: 'batch'; batch: BatchStartFacts } | { kind: 'job'; job: JobStartFacts },
  taskQueue: string,
  policy: StartPolicy,
): Promise<boolean> {
  const [type, options] = subject.kind === 'batch'
    ? [BATCH_WORKFLOW_TYPE, batchStartOptions(subject.batch, taskQueue)]
    : [JOB_WORKFLOW_TYPE, jobStartOptions(subject.job, taskQueue)];
  try {
    await temporal.workflow.start(type, { ...options, ...POLICIES[policy] });
    return true;
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw error;
  }
}

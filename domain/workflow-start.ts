import type { WorkflowStartOptions } from '@temporalio/client';
import { HANDLER, KIND, PROVIDER, STATUS } from './search-attributes';
import type { BatchRecord } from '../db/batches-store';
import type { JobRecord } from '../db/jobs-store';

/**
 * How batch and job workflows are started, shared by the client (first start) and the sweep (restart of a
 * workflow that was terminated or lost): same id, search attributes and Temporal Web summary either way.
 */
type StartOptions = Omit<WorkflowStartOptions, 'workflowIdConflictPolicy' | 'workflowIdReusePolicy'>;

/** The workflow type new batches run (workflows/batch-workflow.ts; `batchWorkflow` is kept for runs already going). */
export const BATCH_WORKFLOW_TYPE = 'batchWorkflowV2';

export function batchStartOptions(batch: BatchRecord, taskQueue: string): StartOptions {
  return {
    taskQueue,
    workflowId: batch.workflowId,
    args: [{ batchId: batch.id }],
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

export function jobStartOptions(job: JobRecord, taskQueue: string): StartOptions {
  return {
    taskQueue,
    workflowId: job.workflowId,
    args: [{ jobId: job.id }],
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

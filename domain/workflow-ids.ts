/**
 * Names of the workflows and their ids. Ids derive from batchkeeper's own ids, known before anything is submitted;
 * the type names are what the client, the sweep and the schedule start (workflows/index.ts exports these functions).
 */
export const BATCH_WORKFLOW_TYPE = 'batchWorkflow';
export const JOB_WORKFLOW_TYPE = 'jobWorkflow';
export const SWEEP_WORKFLOW_TYPE = 'sweepWorkflow';

export const batchWorkflowId = (batchId: string) => `batch-${batchId}`;
export const jobWorkflowId = (jobId: string) => `job-${jobId}`;

/** The kind of work a workflow id belongs to. */
export function subjectKindOfWorkflowId(workflowId: string): 'batch' | 'job' | undefined {
  return workflowId.startsWith('batch-') ? 'batch' : workflowId.startsWith('job-') ? 'job' : undefined;
}

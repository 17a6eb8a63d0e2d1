/** Workflow ids derive from batchkeeper's own ids, known before anything is submitted. */
export const batchWorkflowId = (batchId: string) => `batch-${batchId}`;
export const jobWorkflowId = (jobId: string) => `job-${jobId}`;

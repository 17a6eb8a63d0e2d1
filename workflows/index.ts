/** Every workflow the worker runs. Nothing here may import Node modules or do I/O. */
export { batchWorkflow } from './batch-workflow';
export { jobWorkflow } from './job-workflow';
export { sweepWorkflow } from './sweep-workflow';

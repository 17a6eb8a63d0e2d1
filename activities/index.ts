import { createBatchActivities } from './batch-activities';
import { createDeadLetterActivities } from './dead-letter-activities';
import type { ActivityDeps } from './deps';
import { createJobActivities } from './job-activities';
import { createSweepActivities } from './sweep-activities';

/** All activities of the worker, built from their dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createBatchActivities(deps),
    ...createDeadLetterActivities(deps),
    ...createJobActivities(deps),
    ...createSweepActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { ActivityDeps } from './deps';
export type { BatchHandler, BatchHandlerContext, BatchHandlerRegistry, JobExecutor, JobExecutorRegistry } from './handlers';

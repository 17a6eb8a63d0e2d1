import { resolveRetry } from '../domain/retry-policy';
import { isFinalJobStatus } from '../domain/statuses';
import type { JobPlan } from '../domain/types';
import type { ActivityDeps } from './deps';
import { jobLookup } from './job-lookup';

/** What the job workflow needs to run a job, with its retry settings resolved. */
export function createLoadJobPlan(deps: ActivityDeps) {
  const lookup = jobLookup(deps);
  return async function loadJobPlan(input: { jobId: string }): Promise<JobPlan> {
    const job = await lookup.job(input.jobId);
    const scope = { jobType: job.jobType };
    return {
      jobId: job.id,
      jobType: job.jobType,
      done: isFinalJobStatus(job.status),
      retry: {
        execute: resolveRetry(deps.retry ?? {}, 'execute', scope, job.retryPolicy),
        notify_failure: resolveRetry(deps.retry ?? {}, 'notify_failure', scope),
      },
    };
  };
}

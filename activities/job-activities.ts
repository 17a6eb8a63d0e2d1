import { Context } from '@temporalio/activity';
import type { JobStep, RetrySettings } from '../domain/types';
import { getJob, setJobStatus } from '../db/jobs-store';
import type { ActivityDeps } from './deps';
import { registered } from './handlers';
import { permanentFailure } from './failures';
import { resolveRetry } from '../domain/retry-policy';
import { trackStep } from './step-tracking';

export interface JobPlan {
  jobId: string;
  jobType: string;
  done: boolean;
  retry: Record<JobStep, RetrySettings>;
}

/** Activities of generic async jobs: the executor registered for the job's type does the work. */
export function createJobActivities(deps: ActivityDeps) {
  const { pool } = deps;

  async function requireJob(jobId: string) {
    const job = await getJob(pool, jobId);
    if (!job) throw permanentFailure('UnknownJob', `job ${jobId} does not exist in PostgreSQL`);
    return job;
  }

  return {
    async loadJobPlan(input: { jobId: string }): Promise<JobPlan> {
      const job = await requireJob(input.jobId);
      const scope = { jobType: job.jobType };
      return {
        jobId: job.id,
        jobType: job.jobType,
        done: ['succeeded', 'failed', 'discarded'].includes(job.status),
        retry: {
          execute: resolveRetry(deps.retry ?? {}, 'execute', scope, job.retryPolicy),
          notify_failure: resolveRetry(deps.retry ?? {}, 'notify_failure', scope),
        },
      };
    },

    async executeJob(input: { jobId: string }): Promise<{ attempt: number }> {
      return trackStep(pool, { kind: 'job', id: input.jobId }, 'execute', async (attempt) => {
        const job = await requireJob(input.jobId);
        if (job.status === 'succeeded') return { attempt };
        const executor = registered(deps.jobExecutors, job.jobType);
        if (!executor) throw permanentFailure('UnknownJobType', `no executor for job type '${job.jobType}' is registered on this worker`);
        await setJobStatus(pool, job.id, 'running');
        const context = Context.current();
        const output = await executor.execute(job.input ?? job.inputRef, {
          job,
          attempt,
          pool,
          heartbeat: (details) => context.heartbeat(details),
        });
        await setJobStatus(pool, job.id, 'succeeded', { output: output ?? null });
        return { attempt };
      });
    },
  };
}

export type JobActivities = ReturnType<typeof createJobActivities>;

import { Context } from '@temporalio/activity';
import { setJobStatus } from '../db/jobs-store';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';
import { registered } from './handlers';
import { jobLookup } from './job-lookup';
import { trackStep } from './step-tracking';

/** Runs the executor registered for the job's type once per attempt; its output is stored in PostgreSQL. */
export function createExecuteJob(deps: ActivityDeps) {
  const { pool } = deps;
  const lookup = jobLookup(deps);
  return async function executeJob(input: { jobId: string }): Promise<{ attempt: number }> {
    return trackStep(pool, { kind: 'job', id: input.jobId }, 'execute', async (attempt) => {
      const job = await lookup.job(input.jobId);
      if (job.status === 'succeeded') return { attempt };
      const executor = registered(deps.jobExecutors, job.jobType);
      if (!executor) throw permanentFailure('UnknownJobType', `no executor for job type '${job.jobType}' is registered on this worker`);
      await setJobStatus(pool, job.id, 'running');
      const context = Context.current();
      const output = await executor.execute(job.input ?? job.inputRef, {
        job,
        attempt,
        heartbeat: (details) => context.heartbeat(details),
      });
      await setJobStatus(pool, job.id, 'succeeded', { output: output ?? null });
      return { attempt };
    });
  };
}

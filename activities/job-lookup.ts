import { getJob, type JobRecord } from '../db/jobs-store';
import type { ActivityDeps } from './deps';
import { permanentFailure } from './failures';

export function jobLookup(deps: ActivityDeps) {
  return {
    async job(jobId: string): Promise<JobRecord> {
      const job = await getJob(deps.pool, jobId);
      if (!job) throw permanentFailure('UnknownJob', `job ${jobId} does not exist in PostgreSQL`);
      return job;
    },
  };
}

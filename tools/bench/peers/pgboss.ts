/**
 * The seed's design on pg-boss (PostgreSQL): the poll chain's delayed jobs are pg-boss jobs with `startAfter`, the
 * two sweeps are pg-boss jobs sent on a clock. pg-boss's cron (`schedule()`) has a resolution of one minute, which a
 * compressed run cannot use; each worker process therefore keeps the clock itself and sends the sweep job throttled
 * to one per period across processes (`singletonKey` + `singletonSeconds`), which is how pg-boss's own timekeeper
 * sends a cron job. Polling (every 2 s by default) is lowered to pg-boss's minimum, 0.5 s, for the compressed
 * schedule; job expiry (15 minutes) and maintenance (every 2 minutes) are pg-boss's defaults unless the timing's
 * failureDetectionScale compresses them too.
 */
import PgBoss from 'pg-boss';
import { JOB_RETRY, PeerChain, type ChainDeps, type ChainQueue } from './chain';

export const QUEUES = { submit: 'peer-submit', poll: 'peer-poll', resume: 'peer-resume-sweep', expire: 'peer-expire-sweep' } as const;

export interface PgBossPeerOptions {
  databaseUrl: string;
  /** PeerTiming.failureDetectionScale. */
  failureDetectionScale?: number;
  /** pg-boss's own schema (its job tables). */
  bossSchema: string;
}

const retryOptions = { retryLimit: JOB_RETRY.attempts - 1, retryDelay: Math.round(JOB_RETRY.delayMs / 1000), retryBackoff: true };

/** pg-boss's failure detection (job expiry 15 min, maintenance every 2 min), compressed when the timing says so. */
function detection(scale: number | undefined) {
  if (!scale) return { expiry: {}, maintenance: {} };
  return {
    expiry: { expireInSeconds: Math.max(5, Math.round(900 / scale)) },
    maintenance: { maintenanceIntervalSeconds: Math.max(1, Math.round(120 / scale)) },
  };
}

async function openBoss(options: PgBossPeerOptions, worker: boolean, log: (message: string) => void): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: options.databaseUrl,
    schema: options.bossSchema,
    max: worker ? 8 : 4,
    supervise: worker,
    schedule: false,
    ...detection(options.failureDetectionScale).maintenance,
  });
  boss.on('error', (error) => log(`pg-boss error: ${error.message}`));
  await boss.start();
  for (const name of Object.values(QUEUES)) {
    if (await boss.getQueue(name)) continue;
    await boss.createQueue(name).catch(async (error) => {
      if (!(await boss.getQueue(name))) throw error; // another process created it meanwhile
    });
  }
  return boss;
}

/** What the app (the bench) uses to hand batches to the peer: a submit job each. */
export async function pgBossPeerClient(options: PgBossPeerOptions, log: (message: string) => void = () => undefined) {
  const boss = await openBoss(options, false, log);
  const sendOptions = { ...retryOptions, ...detection(options.failureDetectionScale).expiry };
  return {
    async enqueueSubmit(batchIds: string[]): Promise<void> {
      await boss.insert(batchIds.map((batchId) => ({ name: QUEUES.submit, data: { batchId }, ...sendOptions })));
    },
    /** Poll jobs the app enqueues itself (the bench's open batches start their chains this way). */
    async enqueuePolls(jobs: { batchId: string; attempt: number; delayMs: number }[]): Promise<void> {
      await boss.insert(jobs.map(({ batchId, attempt, delayMs }) => ({
        name: QUEUES.poll, data: { batchId, attempt }, ...sendOptions, startAfter: new Date(Date.now() + delayMs),
      })));
    },
    /** Deletes the queued poll job of a batch (as a queue restart or an evicted job would): the chain is gone. */
    async deletePollJobs(batchId: string): Promise<number> {
      const { rows } = await (boss.getDb() as { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> }).executeSql(
        `DELETE FROM "${options.bossSchema}".job WHERE name = $1 AND data->>'batchId' = $2 AND state IN ('created', 'retry') RETURNING id`,
        [QUEUES.poll, batchId],
      );
      return rows.length;
    },
    close: () => boss.stop({ graceful: false, wait: true }),
  };
}

export interface PeerWorkerHandle {
  chain: PeerChain;
  stop(): Promise<void>;
}

/** A peer worker process's pg-boss side: workers for the four queues and the sweeps' clock. */
export async function startPgBossPeerWorker(
  options: PgBossPeerOptions & { concurrency: number },
  deps: Omit<ChainDeps, 'queue'>,
): Promise<PeerWorkerHandle> {
  const log = deps.log ?? (() => undefined);
  const boss = await openBoss(options, true, log);
  const sendOptions = { ...retryOptions, ...detection(options.failureDetectionScale).expiry };
  const queue: ChainQueue = {
    async enqueuePoll(data, delayMs) {
      await boss.send(QUEUES.poll, data, { ...sendOptions, ...(delayMs > 0 ? { startAfter: new Date(Date.now() + delayMs) } : {}) });
    },
  };
  const chain = new PeerChain({ ...deps, queue });
  // pg-boss hands a worker a batch of jobs and completes them together; each job here fails on its own.
  const work = async (name: string, workers: number, batchSize: number, run: (data: any) => Promise<unknown>) => {
    for (let index = 0; index < workers; index += 1) {
      await boss.work(name, { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        await Promise.all(jobs.map(async (job) => {
          try {
            await run(job.data);
          } catch (error) {
            log(`${name} job ${job.id} failed: ${(error as Error).message}`);
            await boss.fail(name, job.id, { message: (error as Error).message }).catch(() => undefined);
          }
        }));
      });
    }
  };
  const batchSize = Math.max(1, Math.ceil(options.concurrency / 5));
  await work(QUEUES.poll, 5, batchSize, (data) => chain.poll(data));
  await work(QUEUES.submit, 2, batchSize, (data) => chain.submit(data.batchId));
  await work(QUEUES.resume, 1, 1, () => chain.resumeSweep());
  await work(QUEUES.expire, 1, 1, () => chain.expireSweep());
  const clock = (name: string, everyMs: number) => setInterval(() => {
    boss.send(name, {}, { ...sendOptions, singletonKey: name, singletonSeconds: Math.max(1, Math.round(everyMs / 1000)) })
      .catch((error) => log(`sending ${name}: ${(error as Error).message}`));
  }, everyMs);
  const clocks = [clock(QUEUES.resume, deps.timing.resumeEveryMs), clock(QUEUES.expire, deps.timing.expireEveryMs)];
  return {
    chain,
    async stop() {
      for (const timer of clocks) clearInterval(timer);
      await boss.stop({ graceful: true, wait: true, timeout: 10_000 });
    },
  };
}

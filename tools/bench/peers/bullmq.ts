/**
 * The seed's design on BullMQ (Redis): the poll chain's delayed jobs are BullMQ jobs with `delay`, the two sweeps are
 * BullMQ job schedulers (`upsertJobScheduler` with `every`), registered by every worker process when it starts, as
 * an app registers its repeatable jobs at boot. BullMQ's failure detection (30 s lock, stalled-job check every 30 s,
 * one stall allowed) keeps its defaults unless the timing's failureDetectionScale compresses it too. Redis's persistence is whatever the
 * server runs with; the bench's own Redis runs without (`--save '' --appendonly no`), as the fault asks.
 */
import { createConnection } from 'node:net';
import { Queue, Worker, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { JOB_RETRY, PeerChain, type ChainDeps, type ChainQueue } from './chain';
import type { PeerWorkerHandle } from './pgboss';

export const QUEUES = { submit: 'peer-submit', poll: 'peer-poll', sweeps: 'peer-sweeps' } as const;

export interface BullMqPeerOptions {
  /** redis://host:port */
  redisUrl: string;
  /** Key prefix, so several peers can share one Redis. */
  prefix: string;
}

const jobOptions: JobsOptions = {
  attempts: JOB_RETRY.attempts,
  backoff: { type: 'exponential', delay: JOB_RETRY.delayMs },
  removeOnComplete: true,
  removeOnFail: { count: 10_000 },
};

function connection(redisUrl: string): ConnectionOptions {
  const url = new URL(redisUrl);
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
}

/** Fails with a clear message when nothing answers PING at `redisUrl` (BullMQ itself would retry forever). */
export async function checkRedis(redisUrl: string, timeoutMs = 2000): Promise<void> {
  const url = new URL(redisUrl);
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host: url.hostname, port: Number(url.port || 6379) });
    const fail = (why: string) => {
      socket.destroy();
      reject(new Error(`Redis is not reachable at ${redisUrl} (${why}): the BullMQ peer needs a Redis server ` +
        `(e.g. \`redis-server --port ${url.port || 6379} --save '' --appendonly no\`)`));
    };
    const timer = setTimeout(() => fail(`no answer to PING within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (error) => {
      clearTimeout(timer);
      fail(error.message);
    });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      if (data.toString().startsWith('+PONG')) resolve();
      else reject(new Error(`unexpected answer to PING from ${redisUrl}: ${data.toString().slice(0, 80)}`));
    });
  });
}

export async function bullMqPeerClient(options: BullMqPeerOptions) {
  await checkRedis(options.redisUrl);
  const submit = new Queue(QUEUES.submit, { connection: connection(options.redisUrl), prefix: options.prefix });
  const poll = new Queue(QUEUES.poll, { connection: connection(options.redisUrl), prefix: options.prefix });
  return {
    async enqueueSubmit(batchIds: string[]): Promise<void> {
      await submit.addBulk(batchIds.map((batchId) => ({ name: 'submit', data: { batchId }, opts: jobOptions })));
    },
    /** Poll jobs the app enqueues itself (the bench's open batches start their chains this way). */
    async enqueuePolls(jobs: { batchId: string; attempt: number; delayMs: number }[]): Promise<void> {
      await poll.addBulk(jobs.map(({ batchId, attempt, delayMs }) => ({ name: 'poll', data: { batchId, attempt }, opts: { ...jobOptions, delay: delayMs } })));
    },
    /** Deletes the queued poll job of a batch (as a queue restart or an evicted job would): the chain is gone. */
    async deletePollJobs(batchId: string): Promise<number> {
      let deleted = 0;
      for (const job of await poll.getJobs(['delayed', 'wait', 'prioritized'])) {
        if (job?.data?.batchId === batchId) {
          await job.remove();
          deleted += 1;
        }
      }
      return deleted;
    },
    async close() {
      await submit.close();
      await poll.close();
    },
  };
}

/** A peer worker process's BullMQ side: workers for the three queues and the sweeps' schedulers. */
export async function startBullMqPeerWorker(
  options: BullMqPeerOptions & { concurrency: number },
  deps: Omit<ChainDeps, 'queue'>,
): Promise<PeerWorkerHandle> {
  const log = deps.log ?? (() => undefined);
  await checkRedis(options.redisUrl);
  const conn = connection(options.redisUrl);
  const pollQueue = new Queue(QUEUES.poll, { connection: conn, prefix: options.prefix });
  const sweeps = new Queue(QUEUES.sweeps, { connection: conn, prefix: options.prefix });
  for (const queue of [pollQueue, sweeps]) queue.on('error', (error) => log(`BullMQ queue error: ${error.message}`));
  const queue: ChainQueue = {
    async enqueuePoll(data, delayMs) {
      await pollQueue.add('poll', data, { ...jobOptions, ...(delayMs > 0 ? { delay: delayMs } : {}) });
    },
  };
  const chain = new PeerChain({ ...deps, queue });
  // BullMQ's failure detection (a 30 s lock, the stalled-job check every 30 s), compressed when the timing says so.
  const scale = deps.timing.failureDetectionScale;
  const detection = scale ? { lockDuration: Math.max(5000, Math.round(30_000 / scale)), stalledInterval: Math.max(5000, Math.round(30_000 / scale)) } : {};
  const workers = [
    new Worker(QUEUES.poll, async (job) => chain.poll(job.data), { connection: conn, prefix: options.prefix, concurrency: options.concurrency, ...detection }),
    new Worker(QUEUES.submit, async (job) => chain.submit(job.data.batchId), { connection: conn, prefix: options.prefix, concurrency: Math.max(1, Math.ceil(options.concurrency / 2)), ...detection }),
    new Worker(QUEUES.sweeps, async (job) => (job.name === 'resume' ? chain.resumeSweep() : chain.expireSweep()), { connection: conn, prefix: options.prefix, concurrency: 1, ...detection }),
  ];
  for (const worker of workers) {
    worker.on('error', (error) => log(`BullMQ worker error: ${error.message}`));
    worker.on('failed', (job, error) => log(`${worker.name} job ${job?.id} failed (attempt ${job?.attemptsMade}): ${error.message}`));
  }
  await sweeps.upsertJobScheduler('resume', { every: deps.timing.resumeEveryMs }, { name: 'resume', opts: { removeOnComplete: true, removeOnFail: 100 } });
  await sweeps.upsertJobScheduler('expire', { every: deps.timing.expireEveryMs }, { name: 'expire', opts: { removeOnComplete: true, removeOnFail: 100 } });
  await Promise.all(workers.map((worker) => worker.waitUntilReady()));
  return {
    chain,
    async stop() {
      await Promise.all(workers.map((worker) => worker.close()));
      await pollQueue.close();
      await sweeps.close();
    },
  };
}

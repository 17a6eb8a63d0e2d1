/**
 * A peer worker process (`node --import tsx tools/bench/peers/worker.ts`), configured through the environment:
 *   BENCH_PEER              pg-boss | bullmq
 *   DATABASE_URL            PostgreSQL; BENCH_PEER_SCHEMA the peer's schema (batchkeeper's tables + peer_batches)
 *   BENCH_PEER_BOSS_SCHEMA  pg-boss's own schema              BENCH_PEER_REDIS_URL, BENCH_PEER_PREFIX  BullMQ's Redis
 *   BENCH_PEER_TIMING       JSON PeerTiming (chain.ts)        BENCH_PEER_CONCURRENCY  jobs at once (default 50)
 *   OPENAI_* / ANTHROPIC_*  the provider adapters, read by config/load.ts as the stock worker reads them
 * It tells its parent `{ ready: true }` over IPC once it works, answers `{ stats: true }` with its ChainStats and
 * `{ resetStats: true }`, and stops its queue's workers gracefully on SIGTERM.
 */
import { loadConfig } from '../../../config/load';
import { createPool } from '../../../db/pool';
import { createProviders } from '../../../providers/registry';
import { ChainStats, type PeerTiming } from './chain';
import { startBullMqPeerWorker } from './bullmq';
import { handlers } from './effects';
import { startPgBossPeerWorker, type PeerWorkerHandle } from './pgboss';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see tools/bench/peers/worker.ts)`);
  return value;
}

async function main(): Promise<void> {
  const peer = required('BENCH_PEER');
  const log = (message: string) => console.log(`[${peer} ${process.pid}] ${message}`);
  const databaseUrl = required('DATABASE_URL');
  const timing = JSON.parse(required('BENCH_PEER_TIMING')) as PeerTiming;
  const concurrency = Number(process.env.BENCH_PEER_CONCURRENCY ?? 50);
  const pool = createPool(databaseUrl, { schema: required('BENCH_PEER_SCHEMA'), max: 12 });
  pool.on('error', (error) => log(`pool: ${error.message}`));
  const providers = createProviders(loadConfig(process.env, ['providers']).providers!);
  const stats = new ChainStats();
  const deps = { pool, providers, handlers, timing, stats, log };
  let handle: PeerWorkerHandle;
  if (peer === 'pg-boss') {
    handle = await startPgBossPeerWorker({ databaseUrl, bossSchema: required('BENCH_PEER_BOSS_SCHEMA'), concurrency, failureDetectionScale: timing.failureDetectionScale }, deps);
  } else if (peer === 'bullmq') {
    handle = await startBullMqPeerWorker({ redisUrl: required('BENCH_PEER_REDIS_URL'), prefix: process.env.BENCH_PEER_PREFIX ?? 'peer', concurrency }, deps);
  } else {
    throw new Error(`BENCH_PEER must be pg-boss or bullmq, not ${JSON.stringify(peer)}`);
  }
  process.on('message', (message: { stats?: boolean; resetStats?: boolean }) => {
    if (message?.stats) process.send?.({ stats: stats.snapshot() });
    if (message?.resetStats) stats.reset();
  });
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    handle.stop().then(() => pool.end()).then(() => process.exit(0), (error) => {
      log(`stop: ${(error as Error).message}`);
      process.exit(1);
    });
  });
  process.on('unhandledRejection', (error) => log(`unhandled rejection: ${(error as Error)?.stack ?? error}`));
  process.send?.({ ready: true });
  log(`ready (concurrency ${concurrency}, schedule ${timing.pollScheduleMs.join('/')} ms, grace ${timing.pollGraceMs} ms)`);
}

main().catch((error) => {
  console.error(`[peer worker] failed: ${(error as Error).stack ?? error}`);
  process.exit(1);
});

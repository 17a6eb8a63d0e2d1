/**
 * Measurement `peers`: the seed's design on pg-boss and on BullMQ, on the same work as ours in the same run.
 *
 * Throughput: the overhead round's work (N concurrent batches of `requestsPerBatch` requests, the fake's processing
 * time, the schedule `pollScheduleMs`) handed to one peer worker process, timed from the first submit job to the last
 * handler dispatch (ours: first workflow start to last workflow result); CPU per process over the round (peer worker,
 * PostgreSQL, Redis, bench driver and fake); status reads per batch from the fake's counters; completion → handler
 * = handler_dispatched_at − when the fake finished the provider batch (ours: the same, over its overhead rounds).
 *
 * Lateness and memory: the timeliness run's open batches (same count, same poll interval, provider batches that never
 * finish) on a fresh peer worker; their chains are started evenly over one interval; lateness = a poll's start −
 * its batch's next_poll_at, over the polls of a window of `windowMs`; worker RSS (and Redis's) over that window.
 *
 * Time scale: the seed's grace and sweep periods are scaled with the factor that maps its schedule onto the bench's
 * (throughput: 300, 60 s → 200 ms; lateness: 30 min → the timeliness interval).
 */
import type { Pool } from 'pg';
import { inTransaction } from '../../../db/pool';
import { benchBatch, mapLimit, sleep, type BenchContext } from '../context';
import { CpuMeter, postmasterPid, readRss, RssSampler, round1 } from '../memory';
import { API_KEY } from '../presets';
import { percentile, round2, type BenchDetails } from '../report';
import { scaledTiming, type PeerTiming } from './chain';
import {
  defaultSetup, insertPeerBatches, openPeerClient, PEERS, PeerProcess, preparePeerDatabase, type PeerClient, type PeerName, type PeerSetup,
} from './process';
import { startBenchRedis, type BenchRedis } from './redis';
import type { SystemFigures } from './table';

/** The compression of the throughput round: the seed's 60 s first entry → the overhead schedule's 200 ms. */
export const THROUGHPUT_SCALE = 300;


const p = (values: number[], q: number) => (values.length ? Math.round(percentile([...values].sort((a, b) => a - b), q)) : null);

interface PeerRun {
  setup: PeerSetup;
  pool: Pool;
  client: PeerClient;
}

async function openRun(ctx: BenchContext, peer: PeerName, redis: BenchRedis | undefined, timing: PeerTiming, tag: string): Promise<PeerRun> {
  if (peer === 'bullmq' && !redis) throw new Error('Redis is absent: the BullMQ peer cannot run');
  const setup = defaultSetup(peer, {
    databaseUrl: ctx.databaseUrl,
    redisUrl: redis?.url ?? '',
    timing,
    concurrency: 100,
    providerEnv: { OPENAI_API_KEY: API_KEY, OPENAI_BASE_URL: ctx.fake.openaiBaseUrl, ANTHROPIC_API_KEY: API_KEY, ANTHROPIC_BASE_URL: ctx.fake.anthropicBaseUrl },
    tag,
  });
  const pool = await preparePeerDatabase(setup);
  const client = await openPeerClient(setup);
  return { setup, pool, client };
}

async function spawnWorker(ctx: BenchContext, run: PeerRun, name: string): Promise<PeerProcess> {
  const worker = await PeerProcess.spawn(run.setup, name, (line) => {
    if (/failed|error/i.test(line)) ctx.log(line.slice(0, 300));
  });
  ctx.log(`${name} ready (pid ${worker.pid}, ${readRss(worker.pid).rssMb.toFixed(0)} MB RSS)`);
  return worker;
}

/** Completion → handler per batch: handler_dispatched_at − when the fake finished its (last) provider batch. */
export function completionToHandler(ctx: BenchContext, rows: { handler_dispatched_at: Date | null; provider_batch_ids: string[] | null }[]): number[] {
  const values: number[] = [];
  for (const row of rows) {
    if (!row.handler_dispatched_at || !row.provider_batch_ids?.length) continue;
    let finishedAt = 0;
    for (const id of row.provider_batch_ids) {
      const timeline = ctx.fake.batch(id)?.timeline;
      if (timeline) finishedAt = Math.max(finishedAt, Date.parse(timeline.createdAt) + timeline.processingMs);
    }
    if (finishedAt) values.push(row.handler_dispatched_at.getTime() - finishedAt);
  }
  return values;
}

async function throughputRound(ctx: BenchContext, run: PeerRun, worker: PeerProcess, redis: BenchRedis | undefined, label: string, count: number) {
  const { overhead } = ctx.preset;
  const batches = Array.from({ length: count }, () => benchBatch({ requests: overhead.requestsPerBatch, pollScheduleMs: overhead.pollScheduleMs, label }));
  await mapLimit(chunks(batches, 50), 4, (chunk) => insertPeerBatches(run.pool, chunk));
  const ids = batches.map((batch) => batch.id);
  await sleep(500);
  const cpu = new CpuMeter({ worker: worker.pid, postgres: postmasterPid(ctx.stack.postgres.dataDir), redis: run.setup.peer === 'bullmq' ? redis?.pid() : undefined }).start();
  const t0 = Date.now();
  for (const chunk of chunks(ids, 200)) await run.client.enqueueSubmit(chunk);
  const deadline = t0 + 15 * 60_000;
  let done = 0;
  for (let tick = 0; ; tick += 1) {
    done = Number((await run.pool.query('SELECT count(*) AS n FROM peer_batches WHERE batch_id = ANY($1::uuid[]) AND handler_dispatched_at IS NOT NULL', [ids])).rows[0].n);
    if (done === count) break;
    if (Date.now() > deadline) throw new Error(`${label}: ${done}/${count} dispatched after 15 minutes`);
    if (tick % 20 === 0) ctx.log(`${label}: ${done}/${count} dispatched`);
    await sleep(250);
  }
  const cpuSeconds = cpu.stop();
  const last = (await run.pool.query('SELECT max(handler_dispatched_at) AS at FROM peer_batches WHERE batch_id = ANY($1::uuid[])', [ids])).rows[0].at as Date;
  const seconds = (last.getTime() - t0) / 1000;
  const { rows } = await run.pool.query<{ handler_dispatched_at: Date | null; provider_batch_ids: string[] | null }>(
    `SELECT pb.handler_dispatched_at, array_agg(p.provider_batch_id) FILTER (WHERE p.provider_batch_id IS NOT NULL) AS provider_batch_ids
       FROM peer_batches pb LEFT JOIN provider_batches p ON p.batch_id = pb.batch_id
      WHERE pb.batch_id = ANY($1::uuid[]) GROUP BY pb.batch_id, pb.handler_dispatched_at`,
    [ids],
  );
  const statusCalls = rows.reduce((sum, row) => sum + (row.provider_batch_ids ?? []).reduce((n, id) => n + (ctx.fake.counters(id)?.retrieve ?? 0), 0), 0);
  const providerBatches = rows.reduce((sum, row) => sum + (row.provider_batch_ids?.length ?? 0), 0);
  const latency = completionToHandler(ctx, rows);
  const result = {
    batches: count,
    seconds: round2(seconds),
    batchesPerSecond: round2(count / seconds),
    cpuSeconds,
    statusCallsPerBatch: round2(statusCalls / count),
    providerBatchesPerBatch: round2(providerBatches / count),
    completionToHandlerMs: { p50: p(latency, 50), p99: p(latency, 99) },
  };
  ctx.log(`${label}: ${count} in ${result.seconds}s = ${result.batchesPerSecond} batches/s; status reads per batch ${result.statusCallsPerBatch}; ` +
    `completion → handler p50 ${result.completionToHandlerMs.p50} ms; CPU s: ${Object.entries(cpuSeconds).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return result;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let index = 0; index < items.length; index += size) out.push(items.slice(index, index + size));
  return out;
}

function cpuMsPerBatch(cpuSeconds: Record<string, number>, batches: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of ['worker', 'postgres', 'redis', 'benchAndFake']) {
    if (cpuSeconds[name] === undefined) continue;
    out[name] = round1((cpuSeconds[name] * 1000) / batches);
  }
  return out;
}

/** Open batches as a submitted batch leaves them (provider batch created at the fake, never finishing), then their chains. */
async function openBatches(ctx: BenchContext, run: PeerRun, count: number, intervalMs: number): Promise<{ ids: string[]; rampStart: number }> {
  const batches = Array.from({ length: count }, () => benchBatch({ provider: 'anthropic', requests: 1, pollScheduleMs: [intervalMs], label: `${run.setup.peer}-open` }));
  await mapLimit(chunks(batches, 50), 4, (chunk) => insertPeerBatches(run.pool, chunk));
  const providerIds = await mapLimit(batches, 16, async (batch) => {
    const response = await fetch(`${ctx.fake.anthropicBaseUrl}/v1/messages/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ requests: [{ custom_id: 'r-0', params: { model: batch.model, max_tokens: 64, messages: [{ role: 'user', content: 'Benchmark question number 0' }] } }] }),
    });
    if (!response.ok) throw new Error(`fake create: HTTP ${response.status}`);
    return ((await response.json()) as { id: string }).id;
  });
  const ids = batches.map((batch) => batch.id);
  const rampStart = Date.now();
  const delays = ids.map((_, index) => Math.round((index * intervalMs) / count));
  await inTransaction(run.pool, async (db) => {
    await db.query(`UPDATE batch_requests SET provider_custom_id = custom_id, part = 0, attempts = 1 WHERE batch_id = ANY($1::uuid[])`, [ids]);
    await db.query(
      `INSERT INTO provider_batches (batch_id, round, part, tag, request_count, provider_batch_id, status, provider_status, request_counts, submitted_at)
       SELECT id, 1, 0, id::text, 1, pid, 'in_progress', 'in_progress', '{"total":1,"processing":1}'::jsonb, now()
         FROM unnest($1::uuid[], $2::text[]) AS t(id, pid)`,
      [ids, providerIds],
    );
    await db.query(
      `UPDATE peer_batches b SET status = 'in_progress', submitted_at = now(), next_poll_at = to_timestamp($3::float8 / 1000) + t.delay * interval '1 millisecond'
         FROM unnest($1::uuid[], $2::int[]) AS t(id, delay) WHERE b.batch_id = t.id`,
      [ids, delays, rampStart],
    );
  });
  // attempt 5: the schedule's last entry, as a chain that has been running for a while
  for (const chunk of chunks(ids.map((batchId, index) => ({ batchId, attempt: 5, delayMs: delays[index] - (Date.now() - rampStart) })), 500)) {
    await run.client.enqueuePolls(chunk.map((job) => ({ ...job, delayMs: Math.max(0, job.delayMs) })));
  }
  return { ids, rampStart };
}

async function latenessAndMemory(ctx: BenchContext, peer: PeerName, redis: BenchRedis | undefined) {
  const { inFlight, pollIntervalMs, windowMs } = ctx.preset.timeliness;
  // The seed's 30-minute last entry becomes the bench's interval; its grace and sweep periods scale with it.
  const factor = SEED_LAST_ENTRY_MS / pollIntervalMs;
  const run = await openRun(ctx, peer, redis, scaledTiming(factor, { pollScheduleMs: [pollIntervalMs] }), '_open');
  const worker = await spawnWorker(ctx, run, `${peer}-open`);
  ctx.fake.configure({ processingMs: 3650 * 24 * 3_600_000 });
  try {
    const idleMb = readRss(worker.pid).rssMb;
    const sampler = new RssSampler(worker.pid, 1000).start();
    const backendSampler = peer === 'bullmq' && redis?.pid() ? new RssSampler(redis.pid()!, 1000).start() : undefined;
    ctx.log(`${peer}: ${inFlight} open batches polling every ${pollIntervalMs / 1000}s (scale ${round1(factor)}: grace ${run.setup.timing.pollGraceMs} ms)`);
    const { rampStart } = await openBatches(ctx, run, inFlight, pollIntervalMs);
    const windowStart = rampStart + pollIntervalMs;
    const windowEnd = windowStart + windowMs;
    await sleep(Math.max(0, windowStart - Date.now()));
    worker.resetStats();
    await sleep(Math.max(0, windowEnd - Date.now()));
    await sleep(3000);
    const stats = await worker.stats();
    sampler.stop();
    backendSampler?.stop();
    const peak = (sampler_: RssSampler) => round1(sampler_.series.filter((sample) => sample.at >= rampStart).reduce((max, sample) => Math.max(max, sample.rssMb), 0));
    const result = {
      inFlight, pollIntervalMs, windowMs, scale: round1(factor),
      polls: stats.polls,
      pollsNeededPerSecond: round2(inFlight / (pollIntervalMs / 1000)),
      pollsDonePerSecondInWindow: round2(stats.polls / ((windowMs + 3000) / 1000)),
      resumedBySweep: stats.resumed,
      latenessMs: { p50: p(stats.lateness, 50), p90: p(stats.lateness, 90), p99: p(stats.lateness, 99), max: stats.lateness.length ? Math.max(...stats.lateness) : null },
      workerIdleRssMb: round1(idleMb),
      workerPeakRssMb: peak(sampler),
      backendPeakRssMb: backendSampler ? peak(backendSampler) : null,
    };
    ctx.log(`${peer}: lateness p50 ${result.latenessMs.p50} ms, p99 ${result.latenessMs.p99} ms over ${stats.polls} polls; worker RSS ${result.workerPeakRssMb} MB` +
      `${result.backendPeakRssMb !== null ? `, Redis ${result.backendPeakRssMb} MB` : ''} with ${inFlight} open`);
    return result;
  } finally {
    await worker.stop();
    await run.client.close();
    await run.pool.end();
  }
}

const SEED_LAST_ENTRY_MS = 1_800_000;

/** Ours' completion → handler over the overhead rounds' batches (same definition as the peers'). */
async function oursCompletionToHandler(ctx: BenchContext): Promise<number[]> {
  const { rows } = await ctx.pool.query<{ handler_dispatched_at: Date | null; provider_batch_ids: string[] | null }>(
    `SELECT b.handler_dispatched_at, array_agg(p.provider_batch_id) FILTER (WHERE p.provider_batch_id IS NOT NULL) AS provider_batch_ids
       FROM batches b LEFT JOIN provider_batches p ON p.batch_id = b.id
      WHERE b.metadata->>'bench' LIKE 'ours r%' GROUP BY b.id, b.handler_dispatched_at`,
  );
  return completionToHandler(ctx, rows);
}

export async function runPeers(ctx: BenchContext, details: BenchDetails, ours: { pollLatenessP50Ms: number | null; pollLatenessP99Ms: number | null; workerRssMbAt10k: number | null }) {
  const { overhead } = ctx.preset;
  let redis: BenchRedis | undefined;
  const errors: string[] = [];
  try {
    redis = await startBenchRedis(ctx.log);
  } catch (error) {
    errors.push(`bullmq: ${(error as Error).message}`);
    ctx.log(`BullMQ peer ABSENT: ${(error as Error).message}`);
  }
  const systems: Record<string, SystemFigures> = {};
  const peerDetails: Record<string, unknown> = {};
  try {
    const timing = scaledTiming(THROUGHPUT_SCALE, { pollScheduleMs: overhead.pollScheduleMs });
    for (const peer of PEERS) {
      if (peer === 'bullmq' && !redis) continue;
      try {
        ctx.fake.configure({ processingMs: overhead.processingMs });
        const run = await openRun(ctx, peer, redis, timing, '');
        const worker = await spawnWorker(ctx, run, peer);
        let round;
        try {
          await throughputRound(ctx, run, worker, redis, `${peer} warm-up`, overhead.warmupBatches);
          round = await throughputRound(ctx, run, worker, redis, `${peer} r1`, overhead.batches);
        } finally {
          await worker.stop();
          await run.client.close();
          await run.pool.end();
        }
        const open = await latenessAndMemory(ctx, peer, redis);
        const perBatch = cpuMsPerBatch(round.cpuSeconds, round.batches);
        systems[peer] = {
          batchesPerSecond: round.batchesPerSecond,
          cpuMsPerBatch: perBatch,
          cpuMsPerBatchTotal: round1(Object.values(perBatch).reduce((a, b) => a + b, 0)),
          statusCallsPerBatch: round.statusCallsPerBatch,
          pollLatenessP50Ms: open.latenessMs.p50,
          pollLatenessP99Ms: open.latenessMs.p99,
          workerRssMbOpen: open.workerPeakRssMb,
          backendRssMbOpen: open.backendPeakRssMb,
          completionToHandlerP50Ms: round.completionToHandlerMs.p50,
          completionToHandlerP99Ms: round.completionToHandlerMs.p99,
        };
        peerDetails[peer] = { timing, throughput: round, open };
      } catch (error) {
        ctx.log(`${peer} FAILED: ${(error as Error).stack ?? error}`);
        errors.push(`${peer}: ${(error as Error).message}`);
      }
    }
  } finally {
    await redis?.stop();
  }
  // Ours, from the same run's overhead and timeliness measurements.
  const overheadDetails = details.overhead as { oursBestBatchesPerSecond?: number; cpuMsPerBatch?: { ours: Record<string, number> } } | undefined;
  const efficiency = details.providerEfficiency as { statusCallsPerBatch?: number } | undefined;
  const oursLatency = await oursCompletionToHandler(ctx);
  const oursCpu = overheadDetails?.cpuMsPerBatch?.ours ?? null;
  systems.ours = {
    batchesPerSecond: overheadDetails?.oursBestBatchesPerSecond ?? null,
    cpuMsPerBatch: oursCpu,
    cpuMsPerBatchTotal: oursCpu ? round1(Object.values(oursCpu).reduce((a, b) => a + b, 0)) : null,
    statusCallsPerBatch: efficiency?.statusCallsPerBatch ?? null,
    pollLatenessP50Ms: ours.pollLatenessP50Ms,
    pollLatenessP99Ms: ours.pollLatenessP99Ms,
    workerRssMbOpen: ours.workerRssMbAt10k,
    completionToHandlerP50Ms: p(oursLatency, 50),
    completionToHandlerP99Ms: p(oursLatency, 99),
  };
  const ratios: Record<string, Record<string, number | null>> = {};
  for (const peer of PEERS) {
    const them = systems[peer];
    if (!them) continue;
    const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || b === 0 ? null : round2(a / b));
    ratios[peer] = {
      batchesPerSecond: ratio(systems.ours.batchesPerSecond, them.batchesPerSecond),
      cpuMsPerBatchTotal: ratio(systems.ours.cpuMsPerBatchTotal, them.cpuMsPerBatchTotal),
      statusCallsPerBatch: ratio(systems.ours.statusCallsPerBatch, them.statusCallsPerBatch),
      pollLatenessP50Ms: ratio(systems.ours.pollLatenessP50Ms, them.pollLatenessP50Ms),
      pollLatenessP99Ms: ratio(systems.ours.pollLatenessP99Ms, them.pollLatenessP99Ms),
      workerRssMbOpen: ratio(systems.ours.workerRssMbOpen, them.workerRssMbOpen),
      completionToHandlerP50Ms: ratio(systems.ours.completionToHandlerP50Ms, them.completionToHandlerP50Ms),
    };
  }
  details.peers = {
    definition: 'ours/peer ratios; throughput at the overhead round\'s concurrency (higher is better for ours), the rest lower is better for ours. ' +
      'CPU ms per batch by process: ours worker/temporal/postgres/benchAndFake, peers worker/postgres/redis/benchAndFake',
    throughputScale: THROUGHPUT_SCALE,
    systems,
    ratios,
    details: peerDetails,
    errors,
  };
  return { errors };
}
